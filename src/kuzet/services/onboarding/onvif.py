"""ONVIF: find cameras on a network segment (WS-Discovery, the ``WSDiscovery`` package) and ask them for their media
profiles, stream URIs and snapshot URI (the ONVIF device and media services, ``onvif-zeep-async``), so a camera is
added without anyone typing an RTSP URL.

Nothing is fetched from the internet: the WSDL files ship inside ``onvif-zeep-async`` and zeep reads them from disk.
Probes go where they are sent: to the WS-Discovery multicast group 239.255.255.250:3702 of the segment the server
sits in (``multicast``), and/or straight to given addresses (unicast, for cameras in another subnet or a simulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from kuzet.services.audit import Actor
from kuzet.services.cameras import DEFAULT_SCHEMES, create_camera, join_credentials, split_credentials
from kuzet.services.keys import Keyring
from kuzet.store.models import Camera

MULTICAST = ("239.255.255.250", 3702)
NVT = ("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter")
MAX_ADDRESSES = 256


class OnvifError(ValueError):
    pass


@dataclass
class Discovered:
    address: str  # who answered
    epr: str
    xaddrs: list[str]
    scopes: list[str]

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def name(self) -> str | None:
        for scope in self.scopes:
            if scope.startswith("onvif://www.onvif.org/name/"):
                return scope.rsplit("/", 1)[-1].replace("_", " ")
        return None


@dataclass
class Profile:
    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    stream_uri: str | None
    snapshot_uri: str | None


@dataclass
class Device:
    xaddr: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    profiles: list[Profile] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def main_and_sub(self) -> tuple[Profile, Profile | None]:
        """The largest profile with a stream is the main stream, the smallest other one the sub stream."""
        usable = [p for p in self.profiles if p.stream_uri]
        if not usable:
            raise OnvifError("the camera offers no media profile with a stream URI")
        by_size = sorted(usable, key=lambda p: (p.width or 0) * (p.height or 0), reverse=True)
        main = by_size[0]
        rest = [p for p in by_size[1:] if p.stream_uri != main.stream_uri]
        return main, (rest[-1] if rest else None)


def _allowed(address: str, networks: Collection[str] | None) -> bool:
    if networks is None:
        return True
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def lookup(host: str) -> str:
    """The first address of a host name or literal."""
    return socket.getaddrinfo(host.strip(), None, type=socket.SOCK_DGRAM)[0][4][0]


def resolve(host: str, networks: Collection[str] | None) -> str:
    """The address of ``host``, if it lies in ``networks`` (``onboarding.onvif_networks``); OnvifError otherwise."""
    try:
        address = lookup(host)
    except (OSError, UnicodeError, IndexError, ValueError):
        raise OnvifError(f"cannot resolve {host!r}") from None
    if not _allowed(address, networks):
        raise OnvifError(f"{host!r} ({address}) is outside the networks ONVIF may reach (onboarding.onvif_networks)")
    return address


def discover(*, timeout: float = 3.0, addresses: Collection[str] = (), port: int = 3702,
             multicast: bool = True, networks: Collection[str] | None = None) -> list[Discovered]:
    """Send a WS-Discovery Probe for NetworkVideoTransmitters and collect the ProbeMatches within ``timeout``.
    Unicast probes go only to addresses inside ``networks`` (None: anywhere)."""
    from wsdiscovery.actions.probe import constructProbe
    from wsdiscovery.message import createSOAPMessage, parseSOAPMessage
    from wsdiscovery.namespaces import NS_ACTION_PROBE_MATCH
    from wsdiscovery.qname import QName

    if not 0.1 <= timeout <= 30:
        raise OnvifError("timeout must be within 0.1..30 seconds")
    if len(addresses) > MAX_ADDRESSES:
        raise OnvifError(f"at most {MAX_ADDRESSES} addresses per probe")
    env = constructProbe([QName(NVT[0], NVT[1], "dn")], [])
    message = createSOAPMessage(env)
    data = message.encode() if isinstance(message, str) else message
    targets = [(resolve(address, networks), port) for address in addresses]
    if any(":" in t[0] for t in targets):
        raise OnvifError("WS-Discovery probes here are IPv4 only")
    if multicast:
        targets.append(MULTICAST)
    if not targets:
        raise OnvifError("nothing to probe: give addresses or allow multicast")
    found: dict[str, Discovered] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # the segment only
        sock.bind(("", 0))
        for target in targets:
            with contextlib.suppress(OSError):
                sock.sendto(data, target)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                packet, sender = sock.recvfrom(65535)
            except (TimeoutError, OSError):
                break
            reply = parseSOAPMessage(packet, sender[0])
            if reply is None or reply.getAction() != NS_ACTION_PROBE_MATCH or \
                    reply.getRelatesTo() != env.getMessageId():
                continue
            for match in reply.getProbeResolveMatches():
                xaddrs = [x for x in (match.getXAddrs() or []) if x.startswith(("http://", "https://"))]
                found[match.getEPR()] = Discovered(sender[0], match.getEPR(), xaddrs,
                                                   [s.getValue() for s in match.getScopes()])
    return sorted(found.values(), key=lambda d: (d.address, d.xaddrs))


def _host_port(xaddr: str) -> tuple[str, int]:
    try:
        parts = urlsplit(xaddr)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OnvifError(f"{xaddr!r} is not a device service URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OnvifError("the device service URL must be http(s)://host[:port]/onvif/device_service")
    return parts.hostname, port


async def probe_device_async(xaddr: str, username: str | None = None, password: str | None = None,
                             timeout: float = 15.0, networks: Collection[str] | None = None) -> Device:
    """Device information, media profiles, their stream URIs (RTSP) and snapshot URIs of one ONVIF camera (whose
    host must lie inside ``networks``, None: anywhere)."""
    import zeep.exceptions
    from onvif import ONVIFCamera
    from onvif.exceptions import ONVIFError

    host, port = _host_port(xaddr)
    host = await asyncio.to_thread(resolve, host, networks)
    camera = ONVIFCamera(host, port, username or "", password or "")  # it always sends a UsernameToken
    device = Device(xaddr)
    try:
        async with asyncio.timeout(timeout):
            await camera.update_xaddrs()
            mgmt = await camera.create_devicemgmt_service()
            with contextlib.suppress(Exception):
                info = await mgmt.GetDeviceInformation()
                device.manufacturer, device.model = info.Manufacturer, info.Model
                device.serial, device.firmware = info.SerialNumber, info.FirmwareVersion
            media = await camera.create_media_service()
            for p in await media.GetProfiles() or []:
                enc = getattr(p, "VideoEncoderConfiguration", None)
                res = getattr(enc, "Resolution", None) if enc is not None else None
                uri = await media.GetStreamUri({"ProfileToken": p.token, "StreamSetup": {
                    "Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}})
                snap = None
                with contextlib.suppress(Exception):
                    snap = (await media.GetSnapshotUri({"ProfileToken": p.token})).Uri
                device.profiles.append(Profile(p.token, p.Name, getattr(enc, "Encoding", None),
                                               getattr(res, "Width", None), getattr(res, "Height", None),
                                               uri.Uri if uri is not None else None, snap))
    except TimeoutError:
        raise OnvifError(f"the camera at {host}:{port} did not answer within {timeout:g} s") from None
    except Exception as exc:  # noqa: BLE001 - zeep, aiohttp and the library raise many kinds for a non-ONVIF device
        text = str(exc)
        if any(s in text.lower() for s in ("notauthorized", "not authorized", "401", "unauthorized")):
            raise OnvifError(f"the camera at {host}:{port} refused the ONVIF user name or password") from None
        if isinstance(exc, ONVIFError | zeep.exceptions.Fault):
            raise OnvifError(f"the camera at {host}:{port} did not answer as an ONVIF device: {text[:200]}") from None
        raise OnvifError(f"the camera at {host}:{port} did not answer as an ONVIF device "
                         f"({type(exc).__name__})") from None
    finally:
        with contextlib.suppress(Exception):
            await camera.close()
    if not device.profiles:
        raise OnvifError(f"the camera at {host}:{port} has no media profiles")
    return device


def probe_device(xaddr: str, username: str | None = None, password: str | None = None,
                 timeout: float = 15.0, networks: Collection[str] | None = None) -> Device:
    """``probe_device_async`` for synchronous callers (CLI, API routes in worker threads)."""
    return asyncio.run(probe_device_async(xaddr, username, password, timeout, networks))


def add_onvif_camera(session: Session, actor: Actor, keys: Keyring, device: Device, *, place_id: int,
                     name: str | None = None, kind: str = "entrance", username: str | None = None,
                     password: str | None = None, url_schemes: Collection[str] = DEFAULT_SCHEMES,
                     **values: Any) -> Camera:
    """A camera from what the device said: its largest profile as the main stream, its smallest as the sub stream,
    the ONVIF credentials as the stream credentials (encrypted like every camera's)."""
    main, sub = device.main_and_sub()
    creds = f"{username}:{password}" if username and password else (username or None)

    def url(profile: Profile | None) -> str | None:
        if profile is None or not profile.stream_uri:
            return None
        clean, own = split_credentials(profile.stream_uri, url_schemes)
        return join_credentials(clean, own or creds)

    default = " ".join(x for x in (device.manufacturer, device.model, device.serial) if x) or device.xaddr
    return create_camera(session, actor, keys, url_schemes=url_schemes, name=(name or default)[:200], kind=kind,
                         place_id=place_id, main_url=url(main), sub_url=url(sub), **values)
