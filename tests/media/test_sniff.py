"""What a file is goes by its bytes, never by the type it claims."""

import pytest

from tests.media import samples
from ticketer.services import media


@pytest.mark.parametrize(
    ("data", "declared", "kept"),
    [
        (samples.JPEG, "image/jpeg", "image/jpeg"),
        (samples.PNG, "image/jpeg", "image/png"),  # a wrong declared type: the bytes win
        (samples.PDF, "application/octet-stream", "application/pdf"),
        (samples.OGG, "audio/ogg; codecs=opus", "audio/ogg"),
        (samples.MP4, "video/mp4", "video/mp4"),
        (
            samples.docx(),
            "application/octet-stream",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_kept_kinds_are_known_by_their_bytes(data, declared, kept):
    assert media.sniff(data, declared)[0] == kept


@pytest.mark.parametrize(
    ("data", "declared", "what"),
    [
        (samples.SVG_WITH_SCRIPT, "image/svg+xml", "an SVG image"),
        (samples.HTML, "image/jpeg", "an HTML page"),  # a lying type: not an image at all
        (samples.plain_zip(), "application/zip", "a ZIP archive"),
        (b"just some text", "text/plain", "a text file"),
    ],
)
def test_other_kinds_are_not_kept_and_say_what_they_are(data, declared, what):
    assert media.sniff(data, declared) == (None, what)


def test_only_raster_images_audio_and_video_are_inline():
    assert media.is_inline("image/png") and media.is_inline("audio/ogg") and media.is_inline("video/mp4")
    for kind in ("image/svg+xml", "text/html", "application/pdf", "application/octet-stream"):
        assert not media.is_inline(kind)
