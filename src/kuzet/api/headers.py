"""Security headers on every HTTP response.

Every response says ``X-Content-Type-Options: nosniff`` (a JSON answer or an uploaded file is never run as a script
or page), ``X-Frame-Options: DENY`` (no page of ours inside someone else's frame) and ``Referrer-Policy: same-origin``
(addresses, which may carry ids, never leave the site); answers over HTTPS also ``Strict-Transport-Security`` (``[http]
hsts_seconds``). Web-console responses — everything outside ``/api/`` — also
carry a Content-Security-Policy that allows scripts only from this site's files: no inline script, no ``eval``, no
plugin, no ``<base>``, forms only to this site, connections only to this site (its WebSockets included), pictures
and video from this site and ``blob:``/``data:`` (the player, the map), plus the map's tile server when one is given.
The console is written for that policy (see ``web/README.md``, "Rendering user data and CSP").

A pure ASGI middleware, so streamed answers (video, bundles) pass through untouched and WebSockets are not wrapped.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_PATHS = "/api/"
EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# A Host header we are willing to repeat in the policy: a name or IP literal and an optional port, nothing else.
_HOST = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
_SOURCE_HOST = re.compile(r"^(?:(?:\*\.)?[a-z0-9][a-z0-9.-]*|\[[0-9a-f:.]+\])$")


def tile_sources(tiles: str | None) -> list[str]:
    """CSP sources for a Leaflet tile URL template: ``https://{s}.tile.example.org/{z}/{x}/{y}.png`` →
    ``["https://*.tile.example.org"]``. A relative template is this site ('self' already). A placeholder anywhere but
    the first label of the host cannot be written as a source: then pictures may come over that scheme."""
    if not tiles:
        return []
    parts = urlsplit(tiles)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return []
    try:
        port = parts.port
    except ValueError:  # a placeholder as the port
        return [f"{parts.scheme}:"]
    labels = parts.hostname.split(".")
    if "{" in labels[0]:
        labels[0] = "*"
    host = ".".join(labels)
    if ":" in host:
        host = f"[{host}]"
    if not _SOURCE_HOST.match(host):
        return [f"{parts.scheme}:"]
    return [f"{parts.scheme}://{host}{f':{port}' if port else ''}"]


def console_policy(host: str | None = None, tiles: str | None = None) -> str:
    """The Content-Security-Policy of the web console, for a request to ``host`` (its Host header)."""
    connect = ["'self'"]
    if host and _HOST.match(host):
        connect += [f"ws://{host}", f"wss://{host}"]  # 'self' covers them in CSP 3; older browsers need them named
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *tile_sources(tiles)],
        "media-src": ["'self'", "blob:", "data:"],
        "font-src": ["'self'"],
        "connect-src": connect,
        "object-src": ["'none'"],
        "frame-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class SecurityHeaders:
    """Adds the headers above to each HTTP response (a header the route set itself is kept)."""

    def __init__(self, app: ASGIApp, *, map_tiles: str | None = None, hsts_seconds: int = 0) -> None:
        self.app = app
        self.map_tiles = map_tiles
        self.hsts = f"max-age={hsts_seconds}" if hsts_seconds > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        console = not scope["path"].startswith(API_PATHS)
        hsts = self.hsts if self.hsts and _over_https(scope) else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in EVERY_RESPONSE.items():
                    headers.setdefault(name, value)
                if hsts:
                    headers.setdefault("Strict-Transport-Security", hsts)
                if console:
                    host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
                    headers.setdefault("Content-Security-Policy", console_policy(host, self.map_tiles))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _over_https(scope: Scope) -> bool:
    """HSTS only on answers that went out over TLS (directly, or through a trusted proxy that says so): a browser
    ignores it over plain HTTP, and a plain-HTTP installation must not promise HTTPS it does not have."""
    from starlette.requests import HTTPConnection

    from kuzet.api.deps import is_https

    try:
        return is_https(HTTPConnection(scope))
    except Exception:  # noqa: BLE001 - no installation in this app (a bare test app): no promise made
        return scope.get("scheme") == "https"


def install(app: FastAPI, *, map_tiles: str | None = None, hsts_seconds: int = 0) -> None:
    """Register the middleware; ``map_tiles`` is the tile URL template the map uses, if the installation has one;
    ``hsts_seconds`` the Strict-Transport-Security max-age sent on HTTPS (0: none)."""
    app.add_middleware(SecurityHeaders, map_tiles=map_tiles, hsts_seconds=hsts_seconds)
