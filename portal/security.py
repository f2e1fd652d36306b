"""Security headers on every response, and the request-body rule for async views."""

from __future__ import annotations

from flask import Flask, abort, request

from portal.inputs import has_nul

# No inline script or style anywhere: behaviour comes from static files and htmx attributes.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


def init_app(app: Flask) -> None:
    @app.before_request
    def read_body_in_request_thread() -> None:
        # Parse form bodies here, in the request's own thread: reading the socket inside an async
        # view would block the process's shared event loop. Upload views raise the size limit.
        view = app.view_functions.get(request.endpoint or "")
        limit_key = getattr(view, "upload_limit", None)
        if limit_key:
            request.max_content_length = app.config[limit_key]
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            request.form  # noqa: B018
            request.files  # noqa: B018
        # No text column can hold a NUL character (PostgreSQL refuses it): say so before any view
        # reads the value, for every field and query parameter at once.
        for name, value in (*request.args.items(multi=True), *request.form.items(multi=True)):
            if has_nul(name) or has_nul(value):
                abort(400, "The request contains a NUL character, which no field accepts. Nothing was saved.")

    @app.after_request
    def add_security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if not (request.endpoint or "").endswith("static"):
            # Pages hold voter data: never keep them in shared or browser caches.
            response.headers.setdefault("Cache-Control", "no-store")
        response.vary.add("HX-Request")
        return response


def upload_limit(config_key: str):
    """Let a view accept request bodies up to app.config[config_key] bytes."""

    def decorate(view):
        view.upload_limit = config_key
        return view

    return decorate
