"""In an API worker process (``kuzet serve --api-workers N``): what lives in the recorder's process is passed to it.

The recorder's process owns the live stream hub (live WebSocket, live HLS, snapshots), the cameras' health and, on the
in-process bus, the alarm and dispatch pushes. An API worker forwards exactly those routes to the recorder's process
on a loopback port, byte for byte, adding the client's address (``X-Forwarded-For``, one hop, computed here by the
same rules as every other route) so that the audit records of views name the viewer, not the worker. Everything else
— every list, detail and change — is answered by the worker itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from kuzet.api.deps import client_ip

# Routes served by the recorder's process.
RECORDER_PATHS = re.compile(
    r"^/api/v1/(cameras/\d+/(live|live\.m3u8|live/[^/]+|snapshot\.jpg|health)|alarms/live|dispatches/live)$")
_HOP_HEADERS = {b"host", b"connection", b"upgrade", b"keep-alive", b"transfer-encoding", b"te", b"trailer",
                b"proxy-authorization", b"x-forwarded-for", b"x-forwarded-proto", b"forwarded", b"content-length",
                b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-accept"}


class RecorderRoutes:
    """ASGI middleware: requests for ``RECORDER_PATHS`` go to ``recorder`` (``http://127.0.0.1:PORT``)."""

    unavailable = b'{"error":{"code":"unavailable","message":"the recorder is not running"}}'
    extra_headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, app: ASGIApp, recorder: str) -> None:
        self.app = app
        self.recorder = recorder.rstrip("/")
        self._client: Any = None

    async def target(self, scope: Scope) -> str | None:
        """The base URL (``http://host:port``) to pass this request to, or None to answer it here."""
        return self.recorder if RECORDER_PATHS.match(scope.get("path", "")) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            base = await self.target(scope)
            if base is not None:
                if scope["type"] == "http":
                    await self._http(scope, receive, send, base)
                else:
                    await self._websocket(scope, receive, send, base)
                return
        await self.app(scope, receive, send)

    def _headers(self, scope: Scope) -> list[tuple[str, str]]:
        from starlette.requests import HTTPConnection

        conn = HTTPConnection(scope)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
                   if k.lower() not in _HOP_HEADERS]
        ip = client_ip(conn)
        if ip:
            headers.append(("x-forwarded-for", ip))
        return headers + list(self.extra_headers)

    @staticmethod
    def _url(scope: Scope, scheme: str, recorder: str) -> str:
        query = scope.get("query_string", b"").decode("latin-1")
        base = recorder if scheme == "http" else "ws" + recorder[len("http"):]
        return f"{base}{scope['path']}" + (f"?{query}" if query else "")

    async def _http(self, scope: Scope, receive: Receive, send: Send, base: str) -> None:
        import httpx

        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        try:
            request = self._client.build_request(scope["method"], self._url(scope, "http", base),
                                                 headers=self._headers(scope), content=body)
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError:
            await _json(send, 503, self.unavailable)
            return
        try:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.multi_items()
                       if k.lower().encode() not in _HOP_HEADERS]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, base: str) -> None:
        import websockets
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        first = await receive()
        if first["type"] != "websocket.connect":
            return
        try:
            upstream = await websockets.connect(self._url(scope, "ws", base), additional_headers=self._headers(scope),
                                                compression=None, max_size=None, open_timeout=10)
        except InvalidStatus:  # refused before the handshake: tell the client why, as the recorder would have
            await send({"type": "websocket.close", "code": await asyncio.to_thread(_refusal, scope)})
            return
        except (OSError, TimeoutError, websockets.WebSocketException):
            await send({"type": "websocket.close", "code": 1013})  # try again later: the recorder is away
            return
        await send({"type": "websocket.accept"})

        async def client_to_recorder() -> None:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    await upstream.close()
                    return
                data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
                if data is not None:
                    await upstream.send(data)

        async def recorder_to_client() -> None:
            try:
                async for data in upstream:
                    if isinstance(data, bytes):
                        await send({"type": "websocket.send", "bytes": data})
                    else:
                        await send({"type": "websocket.send", "text": data})
            except ConnectionClosed:
                pass
            code = upstream.close_code or 1000
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": code, "reason": upstream.close_reason or ""})

        tasks = [asyncio.ensure_future(client_to_recorder()), asyncio.ensure_future(recorder_to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await upstream.close()


def _refusal(scope: Scope) -> int:
    """4401 (sign in) when the connection carries no valid token, else 4404 (not yours, or not found)."""
    from starlette.websockets import WebSocket

    from kuzet.api.deps import websocket_user

    async def _never() -> dict:  # pragma: no cover - the WebSocket is only read for its cookies and query
        return {}

    return 4401 if websocket_user(WebSocket(scope, _never, _never)) is None else 4404


async def _json(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
