"""Request size limits, enforced while the body streams in, before anything holds it in memory.

``BodyLimits`` counts the bytes of every HTTP request body as the server receives them: at most
``http.max_upload_bytes`` for multipart uploads (imports, photos, documents) and ``http.max_body_bytes`` for
everything else (JSON, forms). A declared ``Content-Length`` over the limit is answered 413 before a byte is read;
a body without one (chunked), or longer than it claimed, is cut off with 413 the moment it passes the limit.

Upload routes then read the file in chunks (``spool``), never whole, and never past the limit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import IO

from fastapi import FastAPI, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kuzet.api.errors import localised
from kuzet.installation import Installation

CHUNK = 1 << 20
TUS_UPLOADS = "/api/v1/bodycams/uploads/"


class BodyTooLarge(StarletteHTTPException):
    """413 with the limit in the message (an HTTPException, so FastAPI's body parsing lets it through)."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(413, f"{what} is larger than {describe(limit)} ({limit} bytes), the most this server accepts")


def describe(size: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


class BodyLimits:
    """ASGI middleware: 413 for request bodies over the installation's limits, checked as the bytes arrive."""

    def __init__(self, app: ASGIApp, inst: Installation) -> None:
        self.app = app
        self.inst = inst

    def limit_for(self, scope: Scope) -> tuple[int, str]:
        http = self.inst.settings.http
        content_type = _header(scope, b"content-type").lower()
        if content_type.startswith("multipart/form-data"):
            return http.max_upload_bytes, "the upload"
        if content_type.startswith("application/offset+octet-stream") and scope.get("method") == "PATCH" \
                and scope.get("path", "").startswith(TUS_UPLOADS):
            # a tus upload's bytes: streamed to disk by routes/bodycams.py, never held; nowhere else gets this much
            return self.inst.settings.bodycams.max_file_bytes, "the upload"
        return http.max_body_bytes, "the request body"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared:
            if not declared.isdigit():
                await _refuse(scope, send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(declared) > limit:
                error = BodyTooLarge(limit, what)
                await _refuse(scope, send, 413, "too_large", error.detail)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, what)
            return message

        await self.app(scope, counted, send)


def install(app: FastAPI, inst: Installation) -> None:
    app.add_middleware(BodyLimits, inst=inst)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


async def _refuse(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    from starlette.requests import Request

    response = localised(Request(scope), code, message, status, {"Connection": "close"})
    await response(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


async def spool(upload: UploadFile, limit: int, suffix: str = "") -> IO[bytes]:
    """Copy an uploaded file to a temporary file in chunks, at most ``limit`` bytes (413 past it); rewound.

    The caller closes it (it is deleted then).
    """
    out = tempfile.NamedTemporaryFile(suffix=suffix)  # noqa: SIM115 - handed to the caller, who closes it
    size = 0
    try:
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit, "the file")
            out.write(chunk)
        out.flush()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def suffix_of(filename: str | None, default: str) -> str:
    """The file's extension (``.csv``, ``.xlsx``), lower case, only letters and digits; ``default`` otherwise."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else default
