"""Security headers on every response: a strict Content-Security-Policy with a per-request nonce."""

import secrets

from flask import Flask, g, request


def csp_nonce() -> str:
    """This request's nonce, for the few inline <script> tags Flask-Admin renders itself."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _is_static(endpoint: str | None) -> bool:
    """The app's and Flask-Admin's static files (`static`, `admin.static`): those may be cached."""
    return endpoint is not None and (endpoint == "static" or endpoint.endswith(".static"))


def init_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def set_headers(response):
        nonce = csp_nonce()
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; "
            "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
            "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not _is_static(request.endpoint):
            # Pages, API answers and exports hold people's data: no browser or proxy keeps a copy
            # (the back button after signing out shows nothing).
            response.headers["Cache-Control"] = "no-store"
        if app.config.get("PUBLIC_URL", "").startswith("https://"):
            # Served over HTTPS: browsers never try plain HTTP again for a year.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
