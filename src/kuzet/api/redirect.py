"""The plain-HTTP listener of an installation that serves HTTPS itself (``[http] redirect_port``): every request is
answered ``308 Permanent Redirect`` to the same path and query on HTTPS; nothing else is served over plain HTTP."""

from __future__ import annotations

import re

from starlette.types import Receive, Scope, Send

# A Host we are willing to repeat in Location: a name or an IP literal, with an optional port (dropped).
_HOST = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


class HttpsRedirect:
    def __init__(self, https_port: int, fallback_host: str) -> None:
        self.https_port = https_port
        self.fallback_host = fallback_host

    def location(self, host_header: str, path: str, query: str) -> str:
        match = _HOST.match(host_header or "")
        host = match.group("name") if match else self.fallback_host
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{host}{port}{path or '/'}{'?' + query if query else ''}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":  # a WebSocket over plain HTTP: refused (ws:// is not upgraded to wss://)
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = dict(scope.get("headers") or [])
        location = self.location(headers.get(b"host", b"").decode("latin-1"), scope.get("path", "/"),
                                 scope.get("query_string", b"").decode("latin-1"))
        await send({"type": "http.response.start", "status": 308,
                    "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": b""})
