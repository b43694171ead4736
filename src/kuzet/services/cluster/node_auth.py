"""Node-to-node credential: a node reading another node's live stream for its own work (an analysing worker reading
the camera from the node recording it), signed with the shared ``[cluster] secret`` (docs/scale.md).

Not a user token: it grants one thing, the live fMP4 of one camera and stream, for ``MAX_SKEW`` seconds around the
moment it was signed; it is accepted only by the live WebSocket route, and such a reading is not a human view (no
audit record, no viewing session). Without a secret configured on the node that serves, every node header is refused.

Header ``X-Kuzet-Node: <node> <unix seconds> <hex HMAC-SHA256(secret, "live|<node>|<camera>|<stream>|<seconds>")>``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from pydantic import SecretStr

HEADER = "x-kuzet-node"
FORWARDED = "x-kuzet-forwarded"  # a request another node passed on (or a node's own): answered where it arrives
MAX_SKEW = 60.0  # seconds either side: the nodes' clocks are kept by NTP


def _mac(secret: SecretStr, node: str, camera_id: int, stream: str, at: int) -> str:
    message = f"live|{node}|{camera_id}|{stream}|{at}".encode()
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()


def sign_live(secret: SecretStr, node: str, camera_id: int, stream: str, at: float | None = None) -> str:
    """The header value for reading ``camera_id``'s ``stream`` live as ``node``."""
    when = int(time.time() if at is None else at)
    return f"{node} {when} {_mac(secret, node, camera_id, stream, when)}"


def verify_live(secret: SecretStr | None, value: str | None, camera_id: int, stream: str,
                now: float | None = None) -> str | None:
    """The signing node's name if ``value`` is a valid, fresh signature for this camera and stream; else None."""
    if secret is None or not value:
        return None
    parts = value.split(" ")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[0]:
        return None
    node, at, mac = parts[0], int(parts[1]), parts[2]
    if abs((time.time() if now is None else now) - at) > MAX_SKEW:
        return None
    if not hmac.compare_digest(mac, _mac(secret, node, camera_id, stream, at)):
        return None
    return node
