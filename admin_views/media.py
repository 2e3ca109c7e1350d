"""Attachments served by the app itself, to signed-in people who may see tickets (viewers too).

Hand-written (a BaseView, not a ModelView): it streams a file from the media store with the headers
that keep it harmless. Raster images, audio and video are served inline (for <img>, <audio> and
<video>); everything else, SVG and HTML above all, only ever as a download (`Content-Disposition:
attachment`, and an SVG or HTML file as application/octet-stream besides). `X-Content-Type-Options:
nosniff` and the app's self-only CSP stay on every answer.
"""

from urllib.parse import quote

from flask import Response, abort, current_app
from flask_admin import expose

from admin_views.base import SecuredView
from ticketer.errors import NotFound
from ticketer.integrations import media_storage
from ticketer.roles import Capability
from ticketer.services import media


class MediaView(SecuredView):
    capability = Capability.VIEW_TICKETS

    def is_visible(self) -> bool:
        return False  # no menu entry: the ticket page links its files

    @expose("/")
    def index(self):
        abort(404)  # Flask-Admin wants a default view; there is no list of files

    @expose("/<uuid:attachment_uuid>")
    def file(self, attachment_uuid):
        try:
            attachment = media.stored_file(str(attachment_uuid))
        except NotFound:
            abort(404)
        storage = media_storage.from_config(current_app.config)
        try:
            chunks = storage.chunks(attachment.storage_key)
        except media_storage.StorageError:
            current_app.logger.warning("media: stored file %s can't be read", attachment.uuid)
            abort(404)
        inline = media.is_inline(attachment.content_type)
        content_type = (
            attachment.content_type if attachment.content_type in media.EXTENSIONS else "application/octet-stream"
        )
        response = Response(chunks, content_type=content_type, direct_passthrough=True)
        if attachment.size is not None:
            response.content_length = attachment.size
        disposition = "inline" if inline else "attachment"
        response.headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(attachment.filename)}"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        return response
