"""Outgoing webhooks: who gets which messages of the operations centre, signed, retried, and logged.

Every message on the bus under ``kuzet.event.>``, ``kuzet.alarm.>`` and ``kuzet.incident.>`` (``messages.py``)
becomes one row in ``webhook_deliveries`` per enabled webhook that wants its topic (``alarm.raised`` …) and whose
organisation is among the message's ``organisations`` (a webhook without an organisation is platform-wide and gets
everything). The rows are the queue: ``WebhookService`` POSTs the due ones, records every attempt in the row's
``attempts_log`` and backs off 1 s, 2 s, 4 s … (at most 10 minutes) until the receiver answers 2xx or
``operations.webhook_max_attempts`` attempts have failed. Pending rows outlive a restart.

Before an attempt a delivery loop *claims* its row: a conditional UPDATE that moves ``next_attempt_at`` a short lease
into the future. Only one claimant wins, so two loops (two server processes, or the API's test ping and the loop)
never post the same attempt twice, and a loop that dies mid-attempt leaves a row that becomes due again when the lease
runs out.

Targets: a webhook never reaches into the installation's own networks. Loopback, link-local, private (RFC 1918,
CGNAT, IPv6 unique-local), unspecified, multicast and other non-global addresses, cloud metadata endpoints among them,
are refused unless inside ``security.webhook_allowed_networks``: when the webhook is created or changed, and again at
every attempt against the addresses its host resolves to then (DNS rebinding), connecting to the address that was
checked. Redirects are never followed. Attempts record a status code or a generic reason ("connection refused", "timed
out", "TLS error", "target not allowed", …), never the text of an internal exception.

Signature (docs/integrations.md): ``X-Kuzet-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`` with
``X-Kuzet-Timestamp`` (Unix seconds of the attempt), ``X-Kuzet-Message-Id`` (stable across retries and redeliveries,
to deduplicate) and ``X-Kuzet-Topic``. The secret is generated here, stored encrypted with the installation's secret
key, shown once at creation and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Select, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from kuzet import __version__
from kuzet.domain.access import Role
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.audit import Actor
from kuzet.services.keys import Keyring
from kuzet.services.operations.audience import audience
from kuzet.services.operations.messages import topic as message_topic
from kuzet.services.operations.messages import topic_matches
from kuzet.store.db import Database, iso_utc, utcnow
from kuzet.store.models import Organisation, User
from kuzet.store.models.operations import Webhook, WebhookDelivery

log = logging.getLogger("kuzet.webhooks")

# Audit actions (domain/audit.py style).
WEBHOOK_CREATED = "webhook.created"
WEBHOOK_CHANGED = "webhook.changed"
WEBHOOK_DELETED = "webhook.deleted"
WEBHOOK_REDELIVERED = "webhook.redelivered"

HEADER_SIGNATURE = "X-Kuzet-Signature"
HEADER_TIMESTAMP = "X-Kuzet-Timestamp"
HEADER_MESSAGE_ID = "X-Kuzet-Message-Id"
HEADER_TOPIC = "X-Kuzet-Topic"
HEADER_DELIVERY = "X-Kuzet-Delivery"

SUBJECTS = ("kuzet.event.>", "kuzet.alarm.>", "kuzet.incident.>")
DEFAULT_TOPICS = "alarm.*,incident.*"
PING = "ping"
# Topic names per kind of message, as messages.py documents them.
KNOWN_TOPICS: dict[str, tuple[str, ...]] = {
    "event": ("new", "update", "end"),
    "alarm": ("raised", "repeated", "acknowledged", "dismissed", "incident"),
    "incident": ("created", "updated", "note", "dispatched", "dispatch", "closed"),
}
MANAGER_ROLES = frozenset({Role.ORGANISATION_ADMIN, Role.OPERATOR_ADMIN})

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookError(ValueError):
    """A webhook's name, URL, topics or secret cannot be used; the message says why."""


class TargetNotAllowed(WebhookError):
    """The URL's host is (or resolves to) an address webhooks are not delivered to."""


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Reasons an attempt records instead of an exception's text (which may describe the server's own network).
REFUSED, TIMED_OUT, TLS_ERROR, NOT_ALLOWED = "connection refused", "timed out", "TLS error", "target not allowed"
NOT_FOUND, FAILED_CONNECTION = "host not found", "connection failed"


# --- topics, URLs, secrets --------------------------------------------------------------------------------------------


def all_topics() -> list[str]:
    return [f"{what}.{kind}" for what, kinds in KNOWN_TOPICS.items() for kind in kinds]


def normalise_topics(value: str | list[str]) -> str:
    """``["alarm.*", " incident.closed"]`` → ``"alarm.*,incident.closed"``; unknown patterns raise WebhookError.

    A pattern is ``*``, a kind (``alarm``, same as ``alarm.*``), ``<kind>.*`` or one known topic.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for raw in items:
        name = str(raw).strip()
        if not name:
            continue
        what, dot, kind = name.partition(".")
        known = name == "*" or (what in KNOWN_TOPICS and (not dot or kind == "*" or kind in KNOWN_TOPICS[what]))
        if not known:
            raise WebhookError(f"unknown topic {name!r} (use *, event.*, alarm.*, incident.* or one of: "
                               f"{', '.join(all_topics())})")
        if name not in out:
            out.append(name)
    if not out:
        raise WebhookError("a webhook needs at least one topic")
    joined = ",".join(out)
    if len(joined) > 400:
        raise WebhookError("too many topics (400 characters at most)")
    return joined


def topic_list(topics: str) -> list[str]:
    return [t for t in topics.split(",") if t]


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host and without ``user:password@`` (receivers check the signature instead)."""
    url = (url or "").strip()
    if not url or len(url) > 1000 or any(c.isspace() for c in url):
        raise WebhookError("the URL must be 1 to 1000 characters without spaces")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookError("the URL must start with http:// or https://")
    if not parts.hostname:
        raise WebhookError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookError("put no user:password in the URL: receivers check the signature instead")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise WebhookError("the URL has a bad port") from None
    return url


# --- where webhooks may go -------------------------------------------------------------------------------------------


def allowed_networks(values: Iterable[str]) -> list[IpNetwork]:
    """``security.webhook_allowed_networks`` as networks (``127.0.0.1/32``, ``10.20.0.0/16``, ``fd00::/8``)."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            log.warning("security.webhook_allowed_networks: %r is not a network; ignored", value)
    return networks


def address_allowed(address: IpAddress, networks: Iterable[IpNetwork]) -> bool:
    """A public (globally routable, not multicast) address, or one inside an allow-listed network."""
    networks = list(networks)
    candidates = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
                                           if address in NAT64 else None)
        if embedded is not None:
            candidates.append(embedded)  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(a in n for a in candidates for n in networks if a.version == n.version):
        return True
    return all(a.is_global and not a.is_multicast for a in candidates)


def resolve(host: str, port: int) -> list[IpAddress]:
    """The addresses ``host`` stands for (itself, for an IP literal). Raises OSError if the name does not resolve."""
    try:
        return [ipaddress.ip_address(host.split("%", 1)[0])]
    except ValueError:
        pass
    found: list[IpAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_target(url: str, networks: Iterable[str] = (), *, unresolved_ok: bool = False) -> list[IpAddress]:
    """The addresses a webhook at ``url`` would be delivered to; TargetNotAllowed if any is not allowed.

    ``unresolved_ok``: a host name that does not resolve (yet) passes, with no addresses (creating a webhook before
    its receiver is in DNS); otherwise it raises TargetNotAllowed too.
    """
    host, port = _host_port(url)
    nets = allowed_networks(networks)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        if unresolved_ok:
            return []
        raise
    if not addresses:
        raise TargetNotAllowed(f"the host {host} has no address")
    refused = [a for a in addresses if not address_allowed(a, nets)]
    if refused:
        where = host if str(refused[0]) == host else f"{host} (at {refused[0]})"
        raise TargetNotAllowed(f"{where} is a loopback, private, link-local or other non-public address: webhooks "
                               "go there only if security.webhook_allowed_networks includes it")
    return addresses


def safe_url(url: str) -> str:
    """The URL without its query and fragment (which may carry a receiver's token), for the audit log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise WebhookError("the name must be 1 to 200 characters")
    return name


def _check_secret(secret: str) -> str:
    if not 16 <= len(secret) <= 200 or any(c.isspace() for c in secret):
        raise WebhookError("a secret must be 16 to 200 characters without spaces")
    return secret


# --- who may manage which webhooks ------------------------------------------------------------------------------------


def may_manage(user: User, organisation_id: int | None) -> bool:
    """Platform admins manage every webhook; organisation and operator admins those of their own organisation."""
    if user.role == Role.PLATFORM_ADMIN:
        return True
    return user.role in MANAGER_ROLES and user.organisation_id is not None and organisation_id == user.organisation_id


def visible_webhooks(user: User) -> Select:
    """SELECT of the webhooks this user may see and manage (none for everyone else)."""
    query = select(Webhook).order_by(Webhook.id)
    if user.role == Role.PLATFORM_ADMIN:
        return query
    if user.role not in MANAGER_ROLES or user.organisation_id is None:
        return query.where(false())
    return query.where(Webhook.organisation_id == user.organisation_id)


# --- creating, changing, deleting -------------------------------------------------------------------------------------


def _describe(hook: Webhook) -> dict[str, Any]:
    return {"name": hook.name, "organisation_id": hook.organisation_id, "url": safe_url(hook.url),
            "topics": hook.topics, "enabled": hook.enabled}


def create_webhook(session: Session, actor: Actor, keys: Keyring, *, name: str, url: str,
                   organisation_id: int | None = None, topics: str | list[str] = DEFAULT_TOPICS,
                   secret: str | None = None, enabled: bool = True,
                   networks: Iterable[str] = ()) -> tuple[Webhook, str]:
    """Create a webhook; returns it and its secret in clear (the only time the secret leaves the server).

    ``networks``: ``security.webhook_allowed_networks`` (the URL's host may not be a non-public address outside them).
    """
    if organisation_id is not None and session.get(Organisation, organisation_id) is None:
        raise WebhookError(f"no organisation {organisation_id}")
    clear = _check_secret(secret) if secret is not None else secrets.token_urlsafe(32)
    url = validate_url(url)
    check_target(url, networks, unresolved_ok=True)
    hook = Webhook(name=_check_name(name), organisation_id=organisation_id, url=url,
                   secret=keys.encrypt(clear), topics=normalise_topics(topics), enabled=bool(enabled),
                   created_by=actor.user_id, created_at=utcnow())
    session.add(hook)
    session.flush()
    audit.append(session, actor, WEBHOOK_CREATED, object_type="webhook", object_id=hook.id, details=_describe(hook))
    return hook, clear


def update_webhook(session: Session, actor: Actor, keys: Keyring, hook: Webhook, *, networks: Iterable[str] = (),
                   **changes: Any) -> Webhook:
    """Change name, url, topics, enabled or secret (a new secret the caller chose; it is not returned). A new URL
    is checked against ``networks`` as in ``create_webhook``."""
    unknown = set(changes) - {"name", "url", "topics", "enabled", "secret"}
    if unknown:
        raise WebhookError(f"cannot change {', '.join(sorted(unknown))}")
    changed: list[str] = []
    if changes.get("name") is not None and changes["name"].strip() != hook.name:
        hook.name = _check_name(changes["name"])
        changed.append("name")
    if changes.get("url") is not None and changes["url"].strip() != hook.url:
        url = validate_url(changes["url"])
        check_target(url, networks, unresolved_ok=True)
        hook.url = url
        changed.append("url")
    if changes.get("topics") is not None:
        topics = normalise_topics(changes["topics"])
        if topics != hook.topics:
            hook.topics = topics
            changed.append("topics")
    if changes.get("enabled") is not None and bool(changes["enabled"]) != hook.enabled:
        hook.enabled = bool(changes["enabled"])
        changed.append("enabled")
    if changes.get("secret") is not None:
        hook.secret = keys.encrypt(_check_secret(changes["secret"]))
        changed.append("secret")
    if changed:
        session.flush()
        audit.append(session, actor, WEBHOOK_CHANGED, object_type="webhook", object_id=hook.id,
                     details={**_describe(hook), "changed": changed})
    return hook


def delete_webhook(session: Session, actor: Actor, hook: Webhook) -> None:
    """Delete a webhook and its delivery log (the audit record keeps what it was)."""
    audit.append(session, actor, WEBHOOK_DELETED, object_type="webhook", object_id=hook.id, details=_describe(hook))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    session.delete(hook)
    session.flush()


# --- signing ----------------------------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 with the secret over ``b"<timestamp>." + body``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: int | str | None, body: bytes, signature: str | None, *,
           max_age: float | None = None, now: float | None = None) -> bool:
    """True if ``signature`` (``sha256=<hex>`` or bare hex) signs ``body`` at ``timestamp`` with ``secret``.

    With ``max_age`` (seconds) a timestamp further than that from ``now`` is refused too, so a captured request cannot
    be replayed later.
    """
    if not signature or timestamp is None or not str(timestamp).isdigit():
        return False
    if max_age is not None and abs((time.time() if now is None else now) - int(timestamp)) > max_age:
        return False
    given = signature.strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given
    return hmac.compare_digest(sign(secret, timestamp, body), given)


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def headers_for(secret: str, body: bytes, *, message_id: str, topic: str, delivery_id: int,
                timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        HEADER_SIGNATURE: sign(secret, ts, body),
        HEADER_TIMESTAMP: ts,
        HEADER_MESSAGE_ID: message_id,
        HEADER_TOPIC: topic,
        HEADER_DELIVERY: str(delivery_id),
    }


# --- messages → delivery rows -----------------------------------------------------------------------------------------


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def envelope(topic: str, data: dict[str, Any], *, subject: str | None, message_id: str,
             at: datetime) -> dict[str, Any]:
    """The JSON body a receiver gets: ``{"id", "topic", "subject", "created_at", "data"}``."""
    return {"id": message_id, "topic": topic, "subject": subject, "created_at": iso_utc(at), "data": data}


def enqueue(session: Session, subject: str, payload: dict[str, Any], *, now: datetime | None = None) -> list[int]:
    """One pending delivery per webhook that wants this message; returns their ids (none if no one wants it)."""
    name = message_topic(subject, payload)
    if name is None:
        return []
    now = now or utcnow()
    orgs = audience(session, subject, payload)
    query = select(Webhook).where(Webhook.enabled.is_(True))
    query = query.where(or_(Webhook.organisation_id.is_(None), Webhook.organisation_id.in_(orgs)) if orgs
                        else Webhook.organisation_id.is_(None))
    message_id = new_message_id()
    rows = []
    for hook in session.scalars(query):
        if not topic_matches(hook.topics, name):
            continue
        # Which other organisations see a message is none of an organisation's receiver's business.
        data = payload if hook.organisation_id is None else {k: v for k, v in payload.items() if k != "organisations"}
        rows.append(WebhookDelivery(
            webhook_id=hook.id, message_id=message_id, topic=name, state=PENDING, attempts=0, attempts_log=[],
            payload=envelope(name, data, subject=subject, message_id=message_id, at=now),
            next_attempt_at=now, created_at=now))
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def enqueue_ping(session: Session, hook: Webhook) -> WebhookDelivery:
    """A ``ping`` message to one webhook, whatever its topics (the API's "send a test")."""
    now = utcnow()
    message_id = new_message_id()
    data = {"type": PING, "webhook_id": hook.id, "message": "Kuzet webhook test"}
    row = WebhookDelivery(webhook_id=hook.id, message_id=message_id, topic=PING, state=PENDING, attempts=0,
                          attempts_log=[], payload=envelope(PING, data, subject=None, message_id=message_id, at=now),
                          next_attempt_at=now, created_at=now)
    session.add(row)
    session.flush()
    return row


def redeliver(session: Session, delivery_id: int, actor: Actor | None = None) -> WebhookDelivery | None:
    """Queue a message again as a new delivery (same message id and body; a fresh set of attempts).

    The old row keeps its log. Returns the new row, or None if there is no such delivery.
    """
    old = session.get(WebhookDelivery, delivery_id)
    if old is None:
        return None
    now = utcnow()
    row = WebhookDelivery(webhook_id=old.webhook_id, message_id=old.message_id, topic=old.topic, payload=old.payload,
                          state=PENDING, attempts=0, attempts_log=[], next_attempt_at=now, created_at=now)
    session.add(row)
    session.flush()
    if actor is not None:
        audit.append(session, actor, WEBHOOK_REDELIVERED, object_type="webhook", object_id=old.webhook_id,
                     details={"delivery_id": old.id, "new_delivery_id": row.id, "message_id": old.message_id})
    return row


# --- one attempt: claim, POST, record ---------------------------------------------------------------------------------


def backoff(attempts: int, base: float = 1.0, cap: float = 600.0) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: base, 2·base, 4·base … at most ``cap``."""
    return min(cap, base * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    webhook_id: int
    url: str
    secret: str
    message_id: str
    topic: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class AttemptResult:
    at: datetime
    status: int | None
    error: str | None
    ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def claim(db: Database, keys: Keyring, delivery_id: int, *, lease: float = 60.0) -> Claimed | None:
    """Take a due pending delivery for one attempt (None if it is not due, not pending, or someone else took it)."""
    now = utcnow()
    with db.session() as session:
        taken = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == PENDING,
                   WebhookDelivery.next_attempt_at <= now)
            .values(next_attempt_at=now + timedelta(seconds=lease))
            .execution_options(synchronize_session=False)
        ).rowcount
        if taken != 1:
            return None
        row = session.get(WebhookDelivery, delivery_id)
        hook = session.get(Webhook, row.webhook_id) if row else None
        if row is None or hook is None or not hook.enabled:
            return None
        return Claimed(row.id, hook.id, hook.url, keys.decrypt(hook.secret), row.message_id, row.topic,
                       dict(row.payload))


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if type(exc).__name__ not in text:
        text = f"{type(exc).__name__}: {text}"
    return text[:300]


def failure_reason(exc: BaseException) -> str:
    """What an attempt records about a failure: one of a few generic reasons, never the exception's own text."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, TargetNotAllowed) for e in chain):
        return NOT_ALLOWED
    if any(isinstance(e, (TimeoutError, httpx.TimeoutException)) for e in chain):
        return TIMED_OUT
    if any(isinstance(e, ssl.SSLError) for e in chain) or any("SSL" in str(e) or "TLS" in str(e) for e in chain):
        return TLS_ERROR
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or any(
            "refused" in str(e).lower() for e in chain):
        return REFUSED
    if any(isinstance(e, socket.gaierror) for e in chain):
        return NOT_FOUND
    return FAILED_CONNECTION


def _pinned(url: str, address: IpAddress) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL with its host replaced by the checked address, the Host header and the TLS server name to keep."""
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal + (f":{parts.port}" if parts.port else "")
    host_header = parts.netloc.rpartition("@")[2]
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" and parts.hostname else {}
    return parts._replace(netloc=netloc).geturl(), {"Host": host_header}, extensions


async def post(client: httpx.AsyncClient, job: Claimed, *, timeout: float = 5.0,
               networks: Iterable[str] = ()) -> AttemptResult:
    """POST one claimed delivery. Never raises: a failure is a result with a generic reason. The response body is
    not read. The host is resolved now and every address checked against the allowed ``networks``; the request goes
    to the address that was checked (so a DNS answer that changes in between cannot redirect it)."""
    body = encode_body(job.payload)
    headers = headers_for(job.secret, body, message_id=job.message_id, topic=job.topic, delivery_id=job.delivery_id)
    at, started = utcnow(), time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeout + 1):
            addresses = await asyncio.to_thread(check_target, job.url, networks)
            url, host, extensions = _pinned(job.url, addresses[0])
            async with client.stream("POST", url, content=body, headers={**headers, **host}, timeout=timeout,
                                     extensions=extensions) as response:
                status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except Exception as exc:  # noqa: BLE001 - a receiver can make a client fail in odd ways; record, retry later
        error = failure_reason(exc)
        log.debug("webhook %s: delivery %s attempt failed: %s (%s)", job.webhook_id, job.delivery_id, error,
                 _error_text(exc))
    return AttemptResult(at, status, error, round((time.monotonic() - started) * 1000))


def record(db: Database, delivery_id: int, result: AttemptResult, *, max_attempts: int, base_delay: float = 1.0,
           max_delay: float = 600.0) -> WebhookDelivery | None:
    """Log an attempt on its row and decide: delivered, try again after the backoff, or failed for good."""
    with db.session() as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:  # the webhook was deleted meanwhile
            return None
        row.attempts += 1
        entry = {"at": iso_utc(result.at), "status": result.status, "error": result.error, "ms": result.ms}
        row.attempts_log = [*(row.attempts_log or []), entry]  # a new list: JSON columns do not track mutation
        now = utcnow()
        if result.ok:
            row.state, row.delivered_at, row.next_attempt_at = DELIVERED, now, None
        elif row.attempts >= max_attempts:
            row.state, row.next_attempt_at = FAILED, None
            log.warning("webhook %s: delivery %s failed after %d attempts (%s)", row.webhook_id, row.id,
                        row.attempts, result.error)
        else:
            row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts, base_delay, max_delay))
        return row


async def attempt(inst: Installation, delivery_id: int, client: httpx.AsyncClient, *, timeout: float = 5.0,
                  lease: float | None = None, max_attempts: int | None = None, base_delay: float = 1.0,
                  max_delay: float = 600.0) -> WebhookDelivery | None:
    """One attempt at one delivery, if it is due and nobody else is attempting it. Returns the updated row."""
    job = await asyncio.to_thread(claim, inst.db, inst.keys, delivery_id, lease=lease or timeout + 30)
    if job is None:
        return None
    result = await post(client, job, timeout=timeout, networks=inst.settings.security.webhook_allowed_networks)
    return await asyncio.to_thread(
        record, inst.db, delivery_id, result, base_delay=base_delay, max_delay=max_delay,
        max_attempts=max_attempts or inst.settings.operations.webhook_max_attempts)


def new_client(timeout: float = 5.0) -> httpx.AsyncClient:
    """The HTTP client of deliveries: no redirects followed (a 3xx is a failed attempt), a Kuzet user agent."""
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                             headers={"User-Agent": f"Kuzet-Webhooks/{__version__}"})


# --- the service ------------------------------------------------------------------------------------------------------


class WebhookService:
    """Turns bus messages into delivery rows and delivers them, at most ``per_webhook`` at a time per webhook.

    A slow or dead receiver only fills its own slots; every other webhook keeps its own. Delays and timeouts are
    constructor parameters so tests can run the whole schedule in a fraction of a second.
    """

    name = "webhooks"

    def __init__(self, inst: Installation, *, base_delay: float = 1.0, max_delay: float = 600.0,
                 timeout: float = 5.0, per_webhook: int = 2, poll_interval: float = 30.0,
                 max_attempts: int | None = None, inbox_size: int = 10_000) -> None:
        self.inst = inst
        self.base_delay, self.max_delay, self.timeout = base_delay, max_delay, timeout
        self.per_webhook = max(1, per_webhook)
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts or inst.settings.operations.webhook_max_attempts
        self.lease = timeout + 30
        self._inbox: asyncio.Queue[tuple[str, dict]] = asyncio.Queue(maxsize=inbox_size)
        self._wake = asyncio.Event()
        self._subs: list = []
        self._tasks: list[asyncio.Task] = []
        self._inflight: dict[int, tuple[int, asyncio.Task]] = {}  # delivery id → (webhook id, task)
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_prune = 0.0

    async def start(self) -> None:
        bus = self.inst.running.bus
        self._loop = asyncio.get_running_loop()
        self._client = new_client(self.timeout)
        self._tasks = [asyncio.create_task(self._deliver_loop(), name="webhooks-deliver"),
                       asyncio.create_task(self._inbox_loop(), name="webhooks-inbox")]
        for pattern in SUBJECTS:
            self._subs.append(await bus.subscribe(pattern, self._on_message))
        self.inst.running.webhooks = self

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._inbox.join(), 5)  # what was received is queued, not lost
        tasks = self._tasks + [task for _, task in self._inflight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # cancelled attempts are retried after the lease
        self._tasks.clear()
        if self._client is not None:
            await self._client.aclose()
        if self.inst.running.webhooks is self:
            self.inst.running.webhooks = None

    def wake(self) -> None:
        """Look for due deliveries now (after new rows, a redelivery, a finished attempt). Callable from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def redeliver(self, delivery_id: int, actor: Actor | None = None) -> int | None:
        """Queue a delivery again (see ``redeliver``); returns the new delivery's id."""
        def _run() -> int | None:
            with self.inst.db.session() as session:
                row = redeliver(session, delivery_id, actor)
                return row.id if row else None

        new_id = await asyncio.to_thread(_run)
        self.wake()
        return new_id

    # Receiving: the bus handler only queues, so a slow database never holds back the publisher.

    async def _on_message(self, subject: str, payload: dict[str, Any]) -> None:
        if message_topic(subject, payload) is None:
            return
        try:
            self._inbox.put_nowait((subject, payload))
        except asyncio.QueueFull:
            log.warning("webhook inbox full: dropped %s", subject)

    async def _inbox_loop(self) -> None:
        while True:
            batch = [await self._inbox.get()]
            while not self._inbox.empty() and len(batch) < 200:
                batch.append(self._inbox.get_nowait())
            try:
                created = await asyncio.to_thread(self._enqueue, batch)
                if created:
                    self.wake()
            except Exception:
                log.exception("could not queue webhook deliveries for %d messages", len(batch))
            finally:
                for _ in batch:
                    self._inbox.task_done()

    def _enqueue(self, batch: list[tuple[str, dict]]) -> int:
        with self.inst.db.session() as session:
            return sum(len(enqueue(session, subject, payload)) for subject, payload in batch)

    # Delivering.

    async def _deliver_loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self._dispatch()
            except Exception:
                log.exception("webhook delivery loop failed; trying again")
                delay = min(self.poll_interval, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _dispatch(self) -> float:
        busy = {did: wid for did, (wid, _) in self._inflight.items()}
        due, delay = await asyncio.to_thread(self._due, busy)
        for delivery_id, webhook_id in due:
            task = asyncio.create_task(self._attempt(delivery_id), name=f"webhook-delivery-{delivery_id}")
            self._inflight[delivery_id] = (webhook_id, task)
            task.add_done_callback(lambda _t, did=delivery_id: self._finished(did))
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            await asyncio.to_thread(self._prune)
        return delay

    def _finished(self, delivery_id: int) -> None:
        self._inflight.pop(delivery_id, None)
        self.wake()

    async def _attempt(self, delivery_id: int) -> None:
        assert self._client is not None
        try:
            await attempt(self.inst, delivery_id, self._client, timeout=self.timeout, lease=self.lease,
                          max_attempts=self.max_attempts, base_delay=self.base_delay, max_delay=self.max_delay)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook delivery %s: attempt failed unexpectedly", delivery_id)

    def _due(self, busy: dict[int, int]) -> tuple[list[tuple[int, int]], float]:
        """Due deliveries to start now (within each webhook's free slots) and seconds until the next one is due."""
        now = utcnow()
        pending = (WebhookDelivery.state == PENDING, Webhook.enabled.is_(True))
        in_use = Counter(busy.values())
        picked: list[tuple[int, int]] = []
        with self.inst.db.session() as session:
            hooks = session.scalars(
                select(WebhookDelivery.webhook_id).distinct().join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(*pending, WebhookDelivery.next_attempt_at <= now)).all()
            for webhook_id in hooks:
                free = self.per_webhook - in_use[webhook_id]
                if free <= 0:
                    continue
                query = (select(WebhookDelivery.id)
                         .where(WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.state == PENDING,
                                WebhookDelivery.next_attempt_at <= now)
                         .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(free))
                if busy:
                    query = query.where(WebhookDelivery.id.not_in(list(busy)))
                picked += [(delivery_id, webhook_id) for delivery_id in session.scalars(query)]
            next_at = session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at))
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(*pending, WebhookDelivery.next_attempt_at > now))
        delay = self.poll_interval if next_at is None else (next_at - utcnow()).total_seconds()
        return picked, max(0.0, min(self.poll_interval, delay))

    def _prune(self) -> None:
        """Finished deliveries are kept as long as events (``operations.events_retention_days``)."""
        cutoff = utcnow() - timedelta(days=self.inst.settings.operations.events_retention_days)
        with self.inst.db.session() as session:
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.state.in_((DELIVERED, FAILED)),
                                                          WebhookDelivery.created_at < cutoff))
