"""A real S3-protocol server for the media store's bucket backend: moto's standalone server on
127.0.0.1 (the same HTTP API a bucket answers), not a mock object."""

import socket

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """A new bucket on the S3 server, with the settings that name it."""
    import uuid

    import boto3

    name = f"ticketer-{uuid.uuid4().hex[:12]}"
    settings = {
        "MEDIA_S3_BUCKET": name,
        "MEDIA_S3_ENDPOINT_URL": s3_server,
        "MEDIA_S3_REGION": "us-east-1",
        "MEDIA_S3_ACCESS_KEY_ID": "testing",
        "MEDIA_S3_SECRET_ACCESS_KEY": "testing",
    }
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return settings


@pytest.fixture(params=["local", "s3"])
def storage_settings(request, tmp_path):
    """Settings for each backend of the media store: run a test on both."""
    if request.param == "local":
        return {"MEDIA_ROOT": str(tmp_path / "media"), "MEDIA_S3_BUCKET": ""}
    return {"MEDIA_ROOT": str(tmp_path / "unused"), **request.getfixturevalue("s3_bucket")}


@pytest.fixture
def store_file(app):
    """store_file(data, content_type, text=...) -> (ticket uuid, attachment uuid, status): a contact's
    message with one attachment on an open ticket, its bytes kept as the download job would."""
    from tests.factories import make_ticket
    from ticketer.extensions import db
    from ticketer.integrations import media_storage
    from ticketer.models.media import MessageAttachment
    from ticketer.services import media
    from ticketer.services import tickets as ticket_service

    def store(
        data: bytes, content_type: str, *, text: str = "Here it is", url: str = "https://files.example/photo.jpg"
    ):
        with app.app_context():
            ticket = make_ticket()
            message = ticket_service.receive_message(
                ticket.contact_id, text, attachments=[{"content_type": content_type, "url": url}]
            )
            attachment = db.session.execute(
                db.select(MessageAttachment).where(MessageAttachment.message_id == message.id)
            ).scalar_one()
            settings = media.Settings.from_config(app.config)
            status = media.keep(attachment.id, data, media_storage.from_config(app.config), settings)
            db.session.commit()
            return ticket.uuid, attachment.uuid, status

    return store
