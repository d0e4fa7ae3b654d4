"""The dispatcher's console as the runner serves it: the static files of ``console/`` at ``/console/`` with the
security headers CloudFront adds in AWS, a generated ``/console/config.json``, and the dev sign-in.

In AWS people sign in with Cognito's hosted UI and the console calls ``ConsoleApi`` with their ID token; API
Gateway's Cognito authorizer hands the function the token's claims. Locally ``POST /_local/console/sign-in``
with an email gives a random token the runner remembers; ``Authorization: Bearer <that token>`` on the ops
routes reaches the function with ``requestContext.authorizer.claims.email`` set (and no IAM user), so the
person's email is the actor in history, as in AWS.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from typing import TYPE_CHECKING
from urllib.parse import unquote

from localdev.apigw import HttpResponse

if TYPE_CHECKING:
    from pathlib import Path

PREFIX = "/console"
SIGN_IN_PATH = "/_local/console/sign-in"
CONFIG = {"api": "", "signIn": "local"}  # api "": the ops routes are on the same origin
# CloudFront's response headers policy in template.yaml, with connect-src 'self' (the API is same-origin here).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254


def is_console_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def serve(method: str, path: str, root: Path) -> HttpResponse:
    """``GET``/``HEAD`` of a file of ``root`` (the ``console/`` folder) under ``/console/``."""
    if method not in ("GET", "HEAD"):
        return _answer(405, b"Method Not Allowed", "text/plain; charset=utf-8", extra=(("Allow", "GET, HEAD"),))
    if path == PREFIX:
        return _answer(301, b"", "text/plain; charset=utf-8", extra=(("Location", PREFIX + "/"),))
    relative = unquote(path.removeprefix(PREFIX + "/")) or "index.html"
    if relative == "config.json":
        return _answer(200, json.dumps(CONFIG).encode(), CONTENT_TYPES[".json"], cache="no-store")
    base = root.resolve()
    target = (base / relative).resolve()
    if relative.endswith("/"):
        target = target / "index.html"
    if base not in target.parents or not target.is_file() or "\x00" in relative:
        return _answer(404, b"Not Found", "text/plain; charset=utf-8")
    content_type = CONTENT_TYPES.get(target.suffix.lower(), "application/octet-stream")
    return _answer(200, target.read_bytes(), content_type, cache="no-cache")


def _answer(
    status: int, body: bytes, content_type: str, *, cache: str = "no-store", extra: tuple[tuple[str, str], ...] = ()
) -> HttpResponse:
    headers = [("Content-Type", content_type), ("Cache-Control", cache), *SECURITY_HEADERS, *extra]
    return HttpResponse(status=status, headers=headers, body=body)


class SignIns:
    """The dev sign-ins: token → email, kept until the runner stops (a reset keeps them: a person stays signed in
    while the data under the console is wiped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._emails: dict[str, str] = {}

    def sign_in(self, email: str) -> str:
        token = "console-" + secrets.token_urlsafe(32)
        with self._lock:
            self._emails[token] = email
        return token

    def email_for(self, token: str) -> str | None:
        with self._lock:
            known = list(self._emails.items())
        found = None
        for candidate, email in known:  # compared in constant time, each
            if hmac.compare_digest(candidate.encode(), token.encode()):
                found = email
        return found


def valid_email(value: object) -> str | None:
    """The email of a sign-in request, trimmed; None when it is not one."""
    if not isinstance(value, str):
        return None
    email = value.strip()
    return email if len(email) <= MAX_EMAIL and _EMAIL.match(email) else None
