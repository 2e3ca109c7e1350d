"""Attachments: what Ticketer keeps of the files in a conversation, and how it gets them.

A message's attachments (`[{content_type, url}]`, from the workspace's pull or the API) are
recorded as `pending` rows (models/media.py) in the same transaction as the message, so the text
is on the ticket before any download starts and a download can never hold it back. The
scheduler's `download_attachments` job then fetches each one (`download`):

- through the outbound-HTTP module (ticketer/engines/outbound.py): a loopback, private or
  link-local target, or a redirect to one, is refused; one deadline for the whole download
  (MEDIA_DOWNLOAD_SECONDS);
- streamed, and cut off past MEDIA_MAX_BYTES (a larger file is kept as a link that says so);
- kept only when its *bytes* are an image (JPEG, PNG, GIF, WebP), audio, video, a PDF or a common
  office document (`sniff`): the declared content type is never trusted (a PNG declared as JPEG is
  stored as PNG; an HTML page or an SVG declared as an image is not stored at all, it stays a link);
- a failure (unreachable, a 5xx, the deadline) is retried with backoff up to MEDIA_MAX_ATTEMPTS,
  then shown as failed; a refused target fails at once (it will not change).

Concurrency: a download is claimed by one UPDATE (attempts + 1, next_attempt_on pushed past the
deadline) before any request, and committed; two schedulers never fetch the same file at once,
and a crash mid-download leaves the row to be tried again once the claim has lapsed.
"""

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

from sqlalchemy import insert, or_, select, update

from ticketer.clock import utcnow
from ticketer.errors import NotFound, ValidationError
from ticketer.extensions import db
from ticketer.integrations import media_storage
from ticketer.models import new_uuid
from ticketer.models.media import AttachmentStatus, MessageAttachment

MAX_ATTACHMENTS_PER_MESSAGE = 10
URL_MAX_LENGTH = 2048
ERROR_MAX_LENGTH = 200
BATCH_SIZE = 20
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
CLAIM_MARGIN = timedelta(seconds=60)

_ATTACHMENTS = MessageAttachment.__table__

# What the ticket page and the media route do with each kept type.
INLINE_IMAGES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
AUDIO = {"audio/ogg", "audio/mpeg", "audio/mp4", "audio/wav", "audio/amr", "audio/webm"}
VIDEO = {"video/mp4", "video/webm", "video/quicktime", "video/3gpp"}
DOCUMENTS = {
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.presentation": ".odp",
}
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/wav": ".wav",
    "audio/amr": ".amr",
    "audio/webm": ".weba",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "video/3gpp": ".3gp",
    **DOCUMENTS,
}
EXTENSION_TYPES = {extension: kind for kind, extension in EXTENSIONS.items()}
_LEGACY_OFFICE = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
_LEGACY_BY_EXTENSION = {
    ".doc": "application/msword",
    ".xls": "application/vnd.ms-excel",
    ".ppt": "application/vnd.ms-powerpoint",
}
_OOXML_PARTS = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
# Names for what isn't kept, so the link says what it is.
_DESCRIPTIONS = {
    "html": "an HTML page",
    "svg": "an SVG image",
    "zip": "a ZIP archive",
    "text": "a text file",
    "unknown": "a file of unknown type",
}


# --- what a file is, by its bytes ----------------------------------------------------------


def sniff(data: bytes, declared: str = "") -> tuple[str | None, str]:
    """(the content type Ticketer keeps, or None when it doesn't keep this kind; what it is).

    Decided by the file's first bytes (its magic numbers), never by the declared type alone; the
    declared type only tells apart kinds the bytes can't (an old .doc from an old .xls)."""
    declared = (declared or "").split(";", 1)[0].strip().lower()
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "a JPEG image"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "a PNG image"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif", "a GIF image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", "a WebP image"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav", "a WAV recording"
    if head.startswith(b"%PDF-"):
        return "application/pdf", "a PDF document"
    if head.startswith(b"OggS"):
        return "audio/ogg", "a voice note (Ogg)"
    if head.startswith(b"#!AMR"):
        return "audio/amr", "a voice note (AMR)"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg", "an MP3 recording"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        kind = "audio/webm" if declared.startswith("audio/") else "video/webm"
        return kind, "a WebM recording" if kind.startswith("audio") else "a WebM video"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B ") or (declared.startswith("audio/") and brand != b"qt  "):
            return "audio/mp4", "an audio recording (MP4)"
        if brand == b"qt  ":
            return "video/quicktime", "a QuickTime video"
        if brand.startswith(b"3g"):
            return "video/3gpp", "a 3GP video"
        return "video/mp4", "an MP4 video"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):  # OLE2: .doc, .xls, .ppt
        kind = declared if declared in _LEGACY_OFFICE else "application/msword"
        return kind, "an Office document"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return None, _DESCRIPTIONS["html"]
    if b"<svg" in data[:1024].lower():
        return None, _DESCRIPTIONS["svg"]
    if text.startswith(b"<?xml"):
        return None, "an XML file"
    if b"\x00" not in data[:1024]:
        return None, _DESCRIPTIONS["text"]
    return None, _DESCRIPTIONS["unknown"]


def _sniff_zip(data: bytes) -> tuple[str | None, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                kind = archive.read("mimetype")[:100].decode("ascii", "replace").strip()
                if kind in DOCUMENTS:
                    return kind, "an OpenDocument file"
            if "[Content_Types].xml" in names:
                for prefix, kind in _OOXML_PARTS.items():
                    if any(name.startswith(prefix) for name in names):
                        return kind, "an Office document"
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError):
        pass
    return None, _DESCRIPTIONS["zip"]


def describe_declared(content_type: str) -> str:
    """What a file not downloaded (yet) is, going by its declared type only."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in ("image/svg+xml",):
        return "an SVG image"
    if kind in ("text/html", "application/xhtml+xml"):
        return "an HTML page"
    major = kind.split("/", 1)[0]
    return {"image": "an image", "audio": "an audio file", "video": "a video"}.get(major) or (
        "a PDF document" if kind == "application/pdf" else f"a file ({kind or 'unknown type'})"
    )


def presentation(content_type: str) -> str:
    """How the page shows a stored file: image, audio, video or download."""
    if content_type in INLINE_IMAGES:
        return "image"
    if content_type in AUDIO:
        return "audio"
    if content_type in VIDEO:
        return "video"
    return "download"


def is_inline(content_type: str) -> bool:
    """Served inline (shown in the page): raster images, audio and video only. Everything else,
    SVG and HTML above all, is only ever a download."""
    return presentation(content_type) != "download"


# --- recording a message's attachments -----------------------------------------------------


def clean_url(url: str, *, allow_http: bool) -> str:
    """An attachment URL the API accepts: absolute HTTPS (HTTP too when MEDIA_ALLOW_HTTP is on)."""
    url = (url or "").strip()
    if len(url) > URL_MAX_LENGTH:
        raise ValidationError(f"An attachment URL can be at most {URL_MAX_LENGTH} characters.", field="attachments")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValidationError(
            "An attachment URL must be an https:// address."
            if not allow_http
            else "An attachment URL must be http(s).",
            field="attachments",
        )
    return url


def _filename_from_url(url: str) -> str:
    path = unquote(urlsplit(url or "").path or "")
    name = path.rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\-]+", "_", name).strip("._")[:100]
    return name or "attachment"


def record_pending(items: list[tuple[int, list]]) -> int:
    """Record the attachments of new messages as pending downloads: (message id, [{content_type,
    url}]) pairs, in one INSERT. Doesn't commit; the caller's transaction holds the messages too."""
    rows = []
    now = utcnow()
    for message_id, attachments in items:
        for position, attachment in enumerate((attachments or [])[:MAX_ATTACHMENTS_PER_MESSAGE]):
            if not isinstance(attachment, dict):
                continue
            url = str(attachment.get("url") or "")[:URL_MAX_LENGTH]
            declared = str(attachment.get("content_type") or "application/octet-stream")[:128]
            rows.append(
                {
                    "uuid": new_uuid(),
                    "message_id": message_id,
                    "position": position,
                    "source_url": url,
                    "content_type": declared,
                    "filename": _filename_from_url(url),
                    "status": AttachmentStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_on": now,
                    "created_on": now,
                }
            )
    if rows:
        db.session.execute(insert(_ATTACHMENTS), rows)
    return len(rows)


def attachments_for(message_ids) -> dict[int, list[MessageAttachment]]:
    """Each message's attachments, in order, in one query (one even for no messages: a page's
    query count doesn't depend on its content)."""
    ids = list(message_ids)
    found: dict[int, list[MessageAttachment]] = {}
    for attachment in db.session.execute(
        select(MessageAttachment)
        .where(MessageAttachment.message_id.in_(ids))
        .order_by(MessageAttachment.message_id, MessageAttachment.position)
    ).scalars():
        found.setdefault(attachment.message_id, []).append(attachment)
    return found


def link_label(attachment: MessageAttachment) -> str:
    """What the page says about an attachment it shows as a link."""
    what = describe_declared(attachment.content_type)
    if attachment.status == AttachmentStatus.PENDING.value:
        return f"{what}, downloading"
    if attachment.error:
        return f"{attachment.error}" if attachment.error.startswith(("an ", "a ")) else f"{what}: {attachment.error}"
    return what


# --- downloading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    max_bytes: int
    deadline_seconds: float
    max_attempts: int
    allowed_hosts: str

    @classmethod
    def from_config(cls, config) -> "Settings":
        return cls(
            max_bytes=int(config.get("MEDIA_MAX_BYTES", 10 * 1024 * 1024)),
            deadline_seconds=float(config.get("MEDIA_DOWNLOAD_SECONDS", 30)),
            max_attempts=int(config.get("MEDIA_MAX_ATTEMPTS", 8)),
            allowed_hosts=config.get("ENGINE_ALLOWED_HOSTS", "") or "",
        )


class TooLarge(Exception):
    pass


class DownloadFailed(Exception):
    """A download that didn't work; `permanent` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def due_attachments(now: datetime | None = None, limit: int = BATCH_SIZE) -> list[int]:
    """Pending attachments whose (next) try is due, oldest first."""
    now = now or utcnow()
    return list(
        db.session.execute(
            select(MessageAttachment.id)
            .where(
                MessageAttachment.status == AttachmentStatus.PENDING.value,
                or_(MessageAttachment.next_attempt_on.is_(None), MessageAttachment.next_attempt_on <= now),
            )
            .order_by(MessageAttachment.next_attempt_on, MessageAttachment.id)
            .limit(limit)
        ).scalars()
    )


def claim(attachment_id: int, settings: Settings) -> str | None:
    """Take one download: its URL, or None when another run has it or it is no longer due."""
    now = utcnow()
    claimed = db.session.execute(
        update(MessageAttachment)
        .where(
            MessageAttachment.id == attachment_id,
            MessageAttachment.status == AttachmentStatus.PENDING.value,
            or_(MessageAttachment.next_attempt_on.is_(None), MessageAttachment.next_attempt_on <= now),
        )
        .values(
            attempts=MessageAttachment.attempts + 1,
            next_attempt_on=now + timedelta(seconds=settings.deadline_seconds) + CLAIM_MARGIN,
        )
        .returning(MessageAttachment.source_url)
        .execution_options(synchronize_session=False)
    ).first()
    return claimed[0] if claimed else None


def download(
    attachment_id: int,
    settings: Settings,
    storage: media_storage.MediaStorage,
    *,
    commit: Callable[[], None],
    fetch: Callable[[str, Settings], bytes] | None = None,
) -> str:
    """Claim, fetch, check and store one attachment; returns its new status. `commit` ends the
    claim's transaction before the request (nothing is held while the other server answers)."""
    url = claim(attachment_id, settings)
    commit()
    if url is None:
        return "skipped"
    fetch = fetch or fetch_url
    try:
        data = fetch(url, settings)
    except TooLarge:
        return _finish(
            attachment_id, AttachmentStatus.LINK, error=f"larger than {_megabytes(settings.max_bytes)}: not downloaded"
        )
    except DownloadFailed as failure:
        return _failed(attachment_id, failure.message, settings, permanent=failure.permanent)
    return keep(attachment_id, data, storage, settings)


def keep(attachment_id: int, data: bytes, storage: media_storage.MediaStorage, settings: Settings) -> str:
    """Store downloaded (or uploaded) bytes when their kind is one Ticketer keeps; else a link."""
    attachment = db.session.get(MessageAttachment, attachment_id)
    if attachment is None:
        raise NotFound("That attachment doesn't exist.")
    if len(data) > settings.max_bytes:
        return _finish(
            attachment_id, AttachmentStatus.LINK, error=f"larger than {_megabytes(settings.max_bytes)}: not downloaded"
        )
    kind, what = sniff(data, attachment.content_type)
    if kind is None:
        declared = (attachment.content_type or "").split(";", 1)[0].strip().lower()
        lying = declared and describe_declared(declared) != what and declared != "application/octet-stream"
        error = f"{what} (declared {declared}): not kept" if lying else f"{what}: not kept"
        return _finish(attachment_id, AttachmentStatus.LINK, error=error, size=len(data))
    key = _new_key()
    try:
        storage.put(key, data, kind)
    except media_storage.StorageError as error:
        return _failed(attachment_id, error.message, settings)
    filename = attachment.filename or "attachment"
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    return _finish(
        attachment_id,
        AttachmentStatus.STORED,
        content_type=kind,
        filename=(stem[:90] or "attachment") + EXTENSIONS.get(kind, ""),
        size=len(data),
        storage_key=key,
    )


def _too_large(attachment_id: int, settings: Settings) -> str:
    return _finish(
        attachment_id, AttachmentStatus.LINK, error=f"larger than {_megabytes(settings.max_bytes)}: not kept"
    )


def _new_key() -> str:
    value = new_uuid()
    return f"{value[:2]}/{value}"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _finish(attachment_id: int, status: AttachmentStatus, **values) -> str:
    db.session.execute(
        update(MessageAttachment)
        .where(MessageAttachment.id == attachment_id)
        .values(status=status.value, next_attempt_on=None, **values)
        .execution_options(synchronize_session=False)
    )
    return status.value


def _failed(attachment_id: int, reason: str, settings: Settings, *, permanent: bool = False) -> str:
    attempts = db.session.execute(
        select(MessageAttachment.attempts).where(MessageAttachment.id == attachment_id)
    ).scalar_one()
    reason = reason[:ERROR_MAX_LENGTH]
    if permanent or attempts >= settings.max_attempts:
        return _finish(attachment_id, AttachmentStatus.FAILED, error=reason)
    delay = min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)
    db.session.execute(
        update(MessageAttachment)
        .where(MessageAttachment.id == attachment_id)
        .values(error=reason, next_attempt_on=utcnow() + delay)
        .execution_options(synchronize_session=False)
    )
    return "retrying"


def fetch_url(url: str, settings: Settings) -> bytes:
    """GET `url` through the outbound-HTTP module (targets checked on every connection and
    redirect; one deadline), reading at most `settings.max_bytes`."""
    from ticketer.engines import outbound

    policy = outbound.Policy(
        allowed_hosts=outbound.AllowedHosts.parse(settings.allowed_hosts), deadline_seconds=settings.deadline_seconds
    )
    try:
        with outbound.exchange(policy), outbound.stream("GET", url) as response:
            if response.status_code >= 400:
                permanent = response.status_code in (400, 401, 403, 404, 410)
                raise DownloadFailed(f"the server answered {outbound.status_line(response)}", permanent=permanent)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > settings.max_bytes:
                raise TooLarge()
            return _read_capped(response.iter_content(64 * 1024), settings.max_bytes)
    except (TooLarge, DownloadFailed):
        raise
    except outbound.Refused as error:
        raise DownloadFailed(error.message, permanent=True) from None
    except Exception as error:  # noqa: BLE001 - any network failure is a retryable download failure
        raise DownloadFailed(outbound.reason(error)) from None


def _read_capped(chunks: Iterator[bytes], max_bytes: int) -> bytes:
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) > max_bytes:
            raise TooLarge()
    return bytes(buffer)


# --- reading a stored file ------------------------------------------------------------------


def stored_file(attachment_uuid: str) -> MessageAttachment:
    """A stored attachment by its uuid; NotFound for any other."""
    attachment = db.session.execute(
        select(MessageAttachment).where(MessageAttachment.uuid == attachment_uuid)
    ).scalar_one_or_none()
    if attachment is None or attachment.status != AttachmentStatus.STORED.value or not attachment.storage_key:
        raise NotFound("That file doesn't exist.")
    return attachment
