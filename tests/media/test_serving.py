"""Stored files are served by the app to people who may see tickets, with headers that keep them
harmless; the ticket page shows each kind as it should."""

import pytest

from tests.media import samples


def test_a_photo_is_served_inline_to_a_viewer(client, login_as, store_file):
    ticket_uuid, attachment_uuid, status = store_file(samples.JPEG, "image/jpeg")
    assert status == "stored"
    login_as("viewer")
    response = client.get(f"/admin/media/{attachment_uuid}")
    assert response.status_code == 200
    assert response.data == samples.JPEG
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    page = client.get(f"/admin/tickets/{ticket_uuid}").get_data(as_text=True)
    assert f'src="/admin/media/{attachment_uuid}"' in page
    assert "<img" in page


def test_a_pdf_is_only_a_download(client, login_as, store_file):
    ticket_uuid, attachment_uuid, _ = store_file(samples.PDF, "application/pdf", url="https://x.example/receipt.pdf")
    login_as("agent")
    response = client.get(f"/admin/media/{attachment_uuid}")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert "receipt.pdf" in response.headers["Content-Disposition"]
    page = client.get(f"/admin/tickets/{ticket_uuid}").get_data(as_text=True)
    assert 'class="msg-document"' in page and "receipt.pdf" in page


def test_voice_notes_and_videos_get_players(client, login_as, store_file):
    ticket_uuid, _, _ = store_file(samples.OGG, "audio/ogg")
    login_as("agent")
    assert "<audio controls" in client.get(f"/admin/tickets/{ticket_uuid}").get_data(as_text=True)
    ticket_uuid, _, _ = store_file(samples.MP4, "video/mp4")
    assert "<video controls" in client.get(f"/admin/tickets/{ticket_uuid}").get_data(as_text=True)


def test_an_svg_with_script_is_never_stored_or_rendered(client, login_as, store_file):
    ticket_uuid, attachment_uuid, status = store_file(samples.SVG_WITH_SCRIPT, "image/svg+xml", text="look")
    assert status == "link"
    login_as("agent")
    assert client.get(f"/admin/media/{attachment_uuid}").status_code == 404
    page = client.get(f"/admin/tickets/{ticket_uuid}").get_data(as_text=True)
    assert "look" in page  # the text is there
    assert "an SVG image: not kept" in page
    assert "<svg" not in page and "alert(document.cookie)" not in page


def test_a_lying_content_type_is_caught(client, login_as, store_file):
    ticket_uuid, attachment_uuid, status = store_file(samples.HTML, "image/jpeg", text="my photo")
    assert status == "link"
    login_as("agent")
    page = client.get(f"/admin/tickets/{ticket_uuid}").get_data(as_text=True)
    assert "an HTML page (declared image/jpeg): not kept" in page
    assert "my photo" in page


def test_a_wrong_content_type_is_corrected(client, login_as, store_file):
    _, attachment_uuid, status = store_file(samples.PNG, "image/jpeg")
    assert status == "stored"
    login_as("agent")
    assert client.get(f"/admin/media/{attachment_uuid}").headers["Content-Type"] == "image/png"


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_serving_works_from_each_backend(app, client, login_as, store_file, storage_settings, backend):
    for key, value in storage_settings.items():
        app.config[key] = value
    _, attachment_uuid, status = store_file(samples.PNG, "image/png")
    assert status == "stored"
    login_as("viewer")
    assert client.get(f"/admin/media/{attachment_uuid}").data == samples.PNG


def test_anonymous_people_are_sent_to_sign_in(client, store_file):
    _, attachment_uuid, _ = store_file(samples.JPEG, "image/jpeg")
    response = client.get(f"/admin/media/{attachment_uuid}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
