"""With several recorder nodes (``[cluster] enabled``): live requests for a camera another node holds go to that node.

A camera's live stream exists only in the process that records it: the node holding its lease (docs/scale.md). A
request for live video of a camera (the fMP4 WebSocket, the live HLS playlist and segments, the snapshot, the
camera's health) that reaches any other node is passed, byte for byte, to the URL the holder advertises
(``[cluster] advertise_url``, kept in its ``recorder_nodes`` row), by the mechanism that passes live routes from API
worker processes to their recorder process (api/recorder_routes.py).

This node first checks that the caller may see the camera: a request without a valid token or without the right is
never passed on, and is answered here exactly as the route answers it (401, or 404 whether the camera exists or not).
The holder checks the access again, serves the stream and writes the audit record naming the viewer's address: the
address this node computed, sent as one ``X-Forwarded-For`` hop (the holder must list the other nodes in
``[http] trusted_proxies`` to believe it). A passed request carries ``X-Kuzet-Forwarded``: the node that gets it
answers it itself, so a lease that moved meanwhile cannot bounce a request between nodes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Scope

from kuzet.api.deps import SESSION_COOKIE, presented_token
from kuzet.api.recorder_routes import RecorderRoutes
from kuzet.domain.access import Right
from kuzet.installation import Installation
from kuzet.services import access, accounts
from kuzet.services.cluster.leases import default_node, holder_url
from kuzet.services.cluster.node_auth import FORWARDED
from kuzet.store.models import Camera

log = logging.getLogger("kuzet.cluster")

CAMERA_LIVE_PATHS = re.compile(r"^/api/v1/cameras/(\d+)/(live|live\.m3u8|live/[^/]+|snapshot\.jpg|health)$")
HOLDER_TTL = 1.0  # seconds a looked-up holder is believed (a lease moves within lease_seconds anyway)


class LeaseHolderRoutes(RecorderRoutes):
    """ASGI middleware of a recorder node: live requests for cameras another node holds go to that node."""

    unavailable = (b'{"error":{"code":"unavailable","message":'
                   b'"the recorder node that holds this camera cannot be reached"}}')

    def __init__(self, app: ASGIApp, inst: Installation) -> None:
        super().__init__(app, "http://127.0.0.1")
        self.inst = inst
        self.node = inst.settings.cluster.node or default_node()
        self.extra_headers = ((FORWARDED, self.node),)
        self._holders: dict[int, tuple[float, str | None, str | None]] = {}

    async def target(self, scope: Scope) -> str | None:
        match = CAMERA_LIVE_PATHS.match(scope.get("path", ""))
        if match is None or any(k.lower() == FORWARDED.encode() for k, _ in scope["headers"]):
            return None
        camera_id = int(match[1])
        node, url = await self._holder(camera_id)
        if node is None or node == self.node:
            return None  # held here, or by nobody: this node answers (offline until a node takes the camera)
        if not url:
            log.warning("camera %s is held by %s, which advertises no URL ([cluster] advertise_url)", camera_id, node)
            return None
        right = None if match[2] == "health" else Right.VIEW_LIVE
        if not await asyncio.to_thread(self._allowed, scope, camera_id, right):
            return None  # answered here as the route answers: 401 or 404, nothing passed on
        return url

    async def _holder(self, camera_id: int) -> tuple[str | None, str | None]:
        now = time.monotonic()
        cached = self._holders.get(camera_id)
        if cached is not None and now - cached[0] < HOLDER_TTL:
            return cached[1], cached[2]
        try:
            node, url = await asyncio.to_thread(holder_url, self.inst.db, camera_id)
        except Exception as exc:  # noqa: BLE001 - the database away: answer here, as a single box would
            log.warning("cannot look up the holder of camera %s: %s", camera_id, exc)
            return None, None
        if len(self._holders) > 10_000:
            self._holders.clear()
        self._holders[camera_id] = (now, node, url)
        return node, url

    def _allowed(self, scope: Scope, camera_id: int, right: Right | None) -> bool:
        """The caller may see the camera (``right`` on it, or any right when None). In a worker thread."""
        conn = HTTPConnection(scope)
        if scope["type"] == "websocket":  # as api/deps.websocket_token, media_caller and caller read them
            token = conn.cookies.get(SESSION_COOKIE) or conn.query_params.get("token")
        elif right is not None:
            token = conn.query_params.get("token") or presented_token(Request(scope))[0]
        else:
            token = presented_token(Request(scope))[0]
        if not token:
            return False
        with self.inst.db.session() as session:
            user = accounts.authenticate(session, token)
            camera = session.get(Camera, camera_id)
            if user is None or camera is None:
                return False
            rights = access.camera_rights(session, user, camera)
            return bool(rights) and (right is None or right in rights)
