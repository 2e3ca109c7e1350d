"""gunicorn settings, read from the working directory by default (`gunicorn 'app:create_app()'`)."""

import gc
import re

from gunicorn.glogging import Logger

# Invitation and password reset links carry their secret in the path: never write it to the access log
# (in the request line, the path, the query or a Referer header). "%2F" too: werkzeug decodes it.
_LINK_TOKEN = re.compile(r"(/(?:invitations|password-reset)(?:/|%2[Ff]))[^/?#\s\"]+")


def redact_link_tokens(value):
    return _LINK_TOKEN.sub(r"\1[redacted]", value) if isinstance(value, str) else value


class RedactingLogger(Logger):
    """gunicorn's logger, with link tokens replaced by "[redacted]" in every access-log field."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact_link_tokens(value) for key, value in atoms.items()}


logger_class = RedactingLogger


def post_worker_init(worker):
    # What the app built at start-up lives as long as the worker: move it out of the garbage
    # collector's reach, so a full collection doesn't walk ~130,000 objects (~100 ms here) in the
    # middle of a request.
    gc.collect()
    gc.freeze()
