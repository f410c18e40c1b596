"""Token authentication for every HTTP request and WebSocket, plus security headers.

The model is Jupyter's: one secret token per server, printed at start as part of a
ready-to-open URL. A request is let through when it carries the token as

* the ``token`` query parameter (the printed URL; the answer then sets a cookie),
* an ``Authorization: Bearer <token>`` header (scripts, ``runtable notify``), or
* the cookie set after the first ``?token=`` visit (HttpOnly, SameSite=Strict), so the
  page's own later requests and its WebSocket carry it without JavaScript seeing it.

Anything else gets 401, whatever the path: the API, ``/api/openapi.json``, the GUI's
files. A WebSocket without the token is refused during the handshake, before it is
accepted (HTTP 401 where the server supports ASGI's denial responses, else the close
code :data:`CLOSE_UNAUTHORIZED`, which the server turns into HTTP 403). Tokens are
compared in constant time.

This is plain ASGI middleware rather than a FastAPI dependency so that nothing mounted
later (static files, new routers) can be forgotten.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Close code for a refused WebSocket (mirrors HTTP 401; 4000-4999 are for applications).
CLOSE_UNAUTHORIZED = 4401

#: Content-Security-Policy of every answer. The GUI is served from this origin only and
#: shows data as text; inline styles are allowed because grid and plot libraries set them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    # The token can be in the page's URL: never send it on in a Referer header.
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
]


def cookie_name(scope: Scope) -> str:
    """The cookie's name for this server.

    Browsers share cookies between ports of one host, so servers for two experiments
    on one machine would overwrite each other's cookie under a fixed name.
    """
    server = scope.get("server")
    port = server[1] if server and server[1] is not None else 0
    return f"runtable-token-{port}"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    # Later duplicates win, which is fine: a request should not repeat these headers.
    return {k.lower(): v for k, v in scope.get("headers", [])}


def find_token(scope: Scope) -> tuple[str | None, str | None]:
    """The token a request carries and where from: ``query``, ``header`` or ``cookie``."""
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "token":
            return value, "query"
    headers = _headers(scope)
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), "header"
    raw_cookie = headers.get(b"cookie")
    if raw_cookie:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw_cookie.decode("latin-1"))
        except Exception:  # a malformed cookie header is simply no token
            return None, None
        morsel = jar.get(cookie_name(scope))
        if morsel is not None and morsel.value:
            return morsel.value, "cookie"
    return None, None


def _same_origin(scope: Scope) -> bool:
    """Whether a browser's WebSocket comes from a page of this server.

    Browsers always send ``Origin`` on WebSockets; other clients usually do not.
    """
    headers = _headers(scope)
    origin = headers.get(b"origin")
    if origin is None:
        return True
    host = headers.get(b"host", b"").decode("latin-1")
    _, _, origin_host = origin.decode("latin-1").partition("://")
    return origin_host.rstrip("/") == host


class TokenAuthMiddleware:
    """ASGI middleware: refuse anything without the token; add security headers."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the server needs a non-empty token")
        self.app = app
        self._token = token.encode()

    def check(self, candidate: str | None) -> bool:
        """Whether ``candidate`` is the token (constant-time comparison)."""
        if candidate is None:
            return False
        return hmac.compare_digest(candidate.encode(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        candidate, source = find_token(scope)
        ok = self.check(candidate)
        if scope["type"] == "websocket":
            # A cookie is sent automatically, also by pages of other sites' scripts that
            # open a WebSocket here; only this server's own pages may use it.
            if ok and source == "cookie" and not _same_origin(scope):
                ok = False
            if not ok:
                await self._refuse_websocket(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if not ok:
            await self._refuse_http(send)
            return

        set_cookie = source == "query"
        name = cookie_name(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if set_cookie:
                    headers.append((b"set-cookie", (
                        f"{name}={candidate}; Path=/; HttpOnly; SameSite=Strict"
                    ).encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _refuse_http(self, send: Send) -> None:
        body = json.dumps({
            "detail": "a valid token is required: open the URL printed by `runtable serve` "
                      "(?token=...), or send 'Authorization: Bearer <token>'",
        }).encode()
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="runtable"'),
                *SECURITY_HEADERS,
            ],
        })
        await send({"type": "http.response.body", "body": body})

    async def _refuse_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            body = b'{"detail":"a valid token is required"}'
            await send({
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer realm="runtable"')],
            })
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED,
                        "reason": "a valid token is required"})
