"""The media store's two backends (local disk, an S3-compatible bucket on a real S3 server)."""

import os
import uuid

import pytest

from ticketer.integrations import media_storage
from ticketer.integrations.media_storage import StorageError


def new_key() -> str:
    value = str(uuid.uuid4())
    return f"{value[:2]}/{value}"


def test_put_read_delete_on_each_backend(storage_settings):
    storage = media_storage.from_config(storage_settings)
    key = new_key()
    data = os.urandom(200_000)  # more than one chunk
    storage.put(key, data, "image/jpeg")
    assert b"".join(storage.chunks(key)) == data
    storage.delete(key)
    with pytest.raises(StorageError):
        b"".join(storage.chunks(key))


def test_the_bucket_backend_really_writes_to_the_bucket(s3_bucket):
    import boto3

    storage = media_storage.from_config({**s3_bucket, "MEDIA_ROOT": "/nonexistent"})
    assert isinstance(storage, media_storage.S3Storage)
    key = new_key()
    storage.put(key, b"%PDF-1.4 hello", "application/pdf")
    client = boto3.client(
        "s3",
        endpoint_url=s3_bucket["MEDIA_S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stored = client.get_object(Bucket=s3_bucket["MEDIA_S3_BUCKET"], Key=key)
    assert stored["Body"].read() == b"%PDF-1.4 hello"
    assert stored["ContentType"] == "application/pdf"


def test_a_missing_bucket_is_a_storage_error(s3_server):
    storage = media_storage.from_config(
        {
            "MEDIA_S3_BUCKET": "no-such-bucket-here",
            "MEDIA_S3_ENDPOINT_URL": s3_server,
            "MEDIA_S3_REGION": "us-east-1",
            "MEDIA_S3_ACCESS_KEY_ID": "testing",
            "MEDIA_S3_SECRET_ACCESS_KEY": "testing",
        }
    )
    with pytest.raises(StorageError, match="NoSuchBucket"):
        storage.put(new_key(), b"x", "image/png")


@pytest.mark.parametrize("key", ["../etc/passwd", "ab/../../x", "/abs", "ab/not-a-uuid"])
def test_keys_from_outside_are_refused(tmp_path, key):
    storage = media_storage.LocalStorage(tmp_path)
    with pytest.raises(StorageError):
        storage.put(key, b"x", "text/plain")


def test_local_files_are_owner_only(tmp_path):
    storage = media_storage.LocalStorage(tmp_path / "media")
    key = new_key()
    storage.put(key, b"x", "image/png")
    assert (tmp_path / "media" / key).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "media" / key).parent.stat().st_mode & 0o777 == 0o700
