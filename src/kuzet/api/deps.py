"""Request dependencies: the installation, the authenticated user, the client address.

The client address (audit records, login throttling, the loopback rule of ``/metrics``) is the TCP peer, unless that
peer is one of ``http.trusted_proxies``: then ``X-Forwarded-For`` is walked from the right, past our own proxies, to
the first address they did not add. Likewise ``X-Forwarded-Proto`` is believed only from a trusted proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from fastapi import Depends, Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from kuzet.api.errors import ApiError, not_found
from kuzet.config import HttpConfig
from kuzet.installation import Installation, Running
from kuzet.services import accounts
from kuzet.services.audit import Actor
from kuzet.store.models import User

SESSION_COOKIE = "kuzet_session"
CSRF_HEADER = "x-requested-with"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def installation(request: Request) -> Installation:
    """The installation the app serves. Asynchronous because it never blocks: FastAPI runs every synchronous
    dependency in a worker thread, a hop that costs more than this whole function, on every request."""
    return request.app.state.installation


def running(conn: HTTPConnection) -> Running:
    """The parts of the services running in this process (recorder, hub, bus, …), each None where it does not run
    here (another node's role, an API worker, tests without the runtime)."""
    return conn.app.state.installation.running


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    nets = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"http.trusted_proxies: {entry!r} is not an address or network (CIDR)") from None
    return tuple(nets)


def trusted_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``http.trusted_proxies`` parsed; ValueError names an entry that is neither an address nor a CIDR."""
    return _networks(tuple(entries))


def _parse_address(text: str) -> IPAddress | None:
    """An address as proxies and servers write it: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``, ``[::1]:443``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(address in net for net in networks)


def _http_config(conn: HTTPConnection) -> HttpConfig:
    return conn.app.state.installation.settings.http


def _from_trusted_proxy(conn: HTTPConnection) -> bool:
    peer = _parse_address(conn.client.host) if conn.client else None
    return _is_trusted(peer, trusted_networks(_http_config(conn).trusted_proxies))


def client_ip(conn: HTTPConnection) -> str | None:
    """The client's address, for a request or a WebSocket (see the module's docstring)."""
    peer = conn.client.host if conn.client else None
    networks = trusted_networks(_http_config(conn).trusted_proxies)
    current = _parse_address(peer) if peer else None
    if not _is_trusted(current, networks):
        return peer
    hops = [hop for header in conn.headers.getlist("x-forwarded-for") for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _parse_address(hop)
        if address is None:  # garbage from further out: believe nothing beyond the last proxy that we trust
            break
        current = address
        if not _is_trusted(address, networks):
            break
    return str(current)


def is_https(conn: HTTPConnection) -> bool:
    """The request reached us over TLS: directly, or (``X-Forwarded-Proto: https``) through a trusted proxy."""
    if conn.url.scheme in ("https", "wss"):
        return True
    if not _from_trusted_proxy(conn):
        return False
    protos = [p.strip().lower() for h in conn.headers.getlist("x-forwarded-proto") for p in h.split(",")]
    return "https" in protos


def secure_cookies(conn: HTTPConnection, http: HttpConfig) -> bool:
    """Whether the session cookie carries ``Secure``: forced by ``http.secure_cookies``, else over HTTPS."""
    return http.secure_cookies or is_https(conn)


def _is_loopback(address: str | None) -> bool:
    parsed = _parse_address(address) if address else None
    return parsed is not None and parsed.is_loopback


def metrics_reader(request: Request, inst: Installation = Depends(installation)) -> None:
    """Guard of the Prometheus endpoint: ``Authorization: Bearer <http.metrics_token>`` when a token is set
    (compared in constant time); without one, loopback clients only, and 404 to anyone else."""
    token = inst.settings.http.metrics_token
    if token:
        auth = request.headers.get("authorization", "")
        presented = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        # Digests of both sides: the comparison takes the same time whatever the length of the guess.
        if not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(),
                                   hashlib.sha256(token.encode()).digest()):
            raise ApiError(401, "metrics need Authorization: Bearer <http.metrics_token>",
                           headers={"WWW-Authenticate": "Bearer"})
        return
    # A forwarded request came through a proxy, whatever its peer address: not a local scrape.
    forwarded = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if forwarded or not _is_loopback(client_ip(request)):
        raise not_found()


def presented_token(request: Request) -> tuple[str | None, str]:
    """The token a request carries and how: ("…", "bearer") or ("…", "cookie")."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), "bearer"
    token = request.query_params.get("access_token") if request.scope.get("type") == "websocket" else None
    if token:
        return token, "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, "cookie") if cookie else (None, "")


@dataclass
class Caller:
    user: User
    ip: str | None
    token: str
    via: str

    @property
    def actor(self) -> Actor:
        return Actor(self.user.id, self.user.username, self.ip)


async def caller(request: Request, inst: Installation = Depends(installation)) -> Caller:
    """The signed-in caller. Asynchronous: a token whose holder is cached (``accounts.cached_token_user``) signs in
    on the event loop without touching the database; only a miss, or a last-use time due to be noted, goes to a
    worker thread. (A synchronous dependency would cost every request a hop to a thread of its own.)"""
    return await _authenticate(request, inst, presented_token(request))


async def media_caller(request: Request, inst: Installation = Depends(installation)) -> Caller:
    """Like ``caller``, but also accepts ``?token=`` for players that cannot send headers (VLC, ffplay, TVs).

    Only media GET endpoints use it; every log line of the process has the token redacted (kuzet.logs).
    """
    token = request.query_params.get("token")
    return await _authenticate(request, inst, (token, "query") if token else presented_token(request))


async def _authenticate(request: Request, inst: Installation, presented: tuple[str | None, str]) -> Caller:
    token, via = presented
    if not token:
        raise ApiError(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
    user = accounts.cached_token_user(inst.db, token)
    if user is None:
        user = await run_in_threadpool(accounts.authenticate_reading, inst.db, token)
    if user is None:
        raise ApiError(401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
    # A cookie-authenticated change must come from our own pages (cross-site forms cannot set this header).
    if via == "cookie" and request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "kuzet":
        raise ApiError(403, "missing X-Requested-With: kuzet header on a cookie-authenticated request")
    return Caller(user, client_ip(request), token, via)


def websocket_token(websocket: WebSocket) -> str | None:
    """The token a WebSocket carries: the session cookie, or ``?token=`` for clients that cannot send cookies."""
    return websocket.cookies.get(SESSION_COOKIE) or websocket.query_params.get("token") or None


def websocket_user(websocket: WebSocket) -> User | None:
    """The user behind a WebSocket (``websocket_token``), or None."""
    inst: Installation = websocket.app.state.installation
    token = websocket_token(websocket)
    if not token:
        return None
    return accounts.authenticate_reading(inst.db, token)
