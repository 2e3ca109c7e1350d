"""Where attachment bytes live: a directory on local disk (MEDIA_ROOT) or an S3-compatible bucket.

Both backends have the same three calls (`put`, `chunks`, `delete`) on a storage key that Ticketer
makes itself (never a name from outside), so nothing here can be steered out of its root or bucket.
No business rules: what may be stored, and who may read it, is ticketer/services/media.py's and
the media route's.

Local disk suits one web host (the default, under instance/media). With several web hosts, every
host must read what the scheduler stored: use a bucket (MEDIA_S3_BUCKET, with MEDIA_S3_ENDPOINT_URL
for a non-AWS server such as MinIO, Ceph or Garage). boto3 is imported only when a bucket is set.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK_SIZE = 64 * 1024
_KEY = re.compile(r"^[0-9a-f]{2}/[0-9a-f-]{36}$")


class StorageError(Exception):
    """The media store could not do what was asked (disk, bucket, network)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class MediaStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def chunks(self, key: str) -> Iterator[bytes]: ...

    def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    """Keys are `ab/<uuid>`: made by Ticketer; anything else is refused (no path tricks)."""
    if not _KEY.match(key):
        raise StorageError("not a media storage key")
    return key


class LocalStorage:
    """Files under `root` (created 0700; each file 0600, written to a temporary name then renamed,
    so a reader never sees half a file)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".part")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except OSError as error:
            raise StorageError(f"could not write the file: {error.strerror or error}") from error

    def chunks(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed by the generator
        except OSError as error:
            raise StorageError(f"could not read the file: {error.strerror or error}") from error
        return _file_chunks(file)

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as error:
            raise StorageError(f"could not delete the file: {error.strerror or error}") from error


def _file_chunks(file) -> Iterator[bytes]:
    with file:
        while chunk := file.read(CHUNK_SIZE):
            yield chunk


class S3Storage:
    """Objects in an S3-compatible bucket, through boto3 (keys prefixed with `prefix`)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "",
        timeout_seconds: float = 20.0,
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=BotoConfig(
                connect_timeout=timeout_seconds,
                read_timeout=timeout_seconds,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"could not write to the bucket: {_boto_reason(error)}") from error

    def chunks(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"could not read from the bucket: {_boto_reason(error)}") from error
        return _body_chunks(body)

    def delete(self, key: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"could not delete from the bucket: {_boto_reason(error)}") from error


def _body_chunks(body) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()


def _boto_reason(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(error).__name__


def from_config(config) -> MediaStorage:
    """The bucket when MEDIA_S3_BUCKET is set, else the directory MEDIA_ROOT."""
    bucket = config.get("MEDIA_S3_BUCKET") or ""
    if bucket:
        return S3Storage(
            bucket,
            endpoint_url=config.get("MEDIA_S3_ENDPOINT_URL") or None,
            region=config.get("MEDIA_S3_REGION") or None,
            access_key=config.get("MEDIA_S3_ACCESS_KEY_ID") or None,
            secret_key=config.get("MEDIA_S3_SECRET_ACCESS_KEY") or None,
            prefix=config.get("MEDIA_S3_PREFIX") or "",
        )
    return LocalStorage(config["MEDIA_ROOT"])
