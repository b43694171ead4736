"""The simulator's ONVIF face: each simulated camera answers WS-Discovery probes and serves the ONVIF device and media
services (device information, services, profiles, stream URIs, snapshot URI and the snapshot itself), pointing at
its RTSP streams — so tests discover and add simulated cameras without typing an RTSP URL.

WS-Discovery messages are built and parsed with the ``WSDiscovery`` package; the responder listens on the address it
is given (``127.0.0.1`` in tests: a unicast probe; on ``0.0.0.0`` it also joins the multicast group
239.255.255.250:3702 of the segment). The SOAP services run on aiohttp, one port per camera, because ONVIF clients
reach a device at the fixed path ``/onvif/device_service`` of its host and port. A camera with credentials refuses
requests without a valid WS-Security UsernameToken (password digest), like a real one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import socket
import struct
import uuid
from dataclasses import dataclass, field
from html import escape

log = logging.getLogger("kuzet.sim.onvif")

MULTICAST = ("239.255.255.250", 3702)
NVT = ("http://www.onvif.org/ver10/network/wsdl", "NetworkVideoTransmitter")
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
            '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" '
            'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error">'
            '<s:Body>{body}</s:Body></s:Envelope>')


@dataclass
class OnvifDevice:
    """One simulated camera's ONVIF identity and where its streams are."""

    index: int
    host: str
    rtsp_main: str
    rtsp_sub: str | None
    width: int
    height: int
    sub_width: int = 640
    sub_height: int = 360
    credentials: str | None = None  # "user:password" required by the SOAP services, if set
    snapshot: bytes = b""
    port: int = 0
    epr: str = field(default_factory=lambda: uuid.uuid4().urn)

    @property
    def xaddr(self) -> str:
        return f"http://{self.host}:{self.port}/onvif/device_service"

    @property
    def scopes(self) -> list[str]:
        return ["onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/Profile/Streaming",
                f"onvif://www.onvif.org/name/KuzetSim-cam{self.index}", "onvif://www.onvif.org/hardware/KuzetSim"]


def check_username_token(envelope: str, credentials: str | None) -> bool:
    """Whether a SOAP request carries the right WS-Security UsernameToken (digest or text), if one is required."""
    if not credentials:
        return True
    user, _, password = credentials.partition(":")
    found = {name: re.search(rf"<[^>]*:?{name}\b[^>]*>([^<]*)</", envelope) for name in
             ("Username", "Password", "Nonce", "Created")}
    if not found["Username"] or not found["Password"] or found["Username"].group(1).strip() != user:
        return False
    given = found["Password"].group(1).strip()
    if "PasswordDigest" in envelope:
        if not found["Nonce"] or not found["Created"]:
            return False
        try:
            nonce = base64.b64decode(found["Nonce"].group(1).strip())
        except ValueError:
            return False
        digest = base64.b64encode(hashlib.sha1(nonce + found["Created"].group(1).strip().encode()
                                               + password.encode()).digest()).decode()
        return digest == given
    return given == password


def _operation(envelope: str) -> str:
    body = envelope.split("Body", 1)[-1]
    match = re.search(r"<(?:\w+:)?(\w+)[\s/>]", body[body.index(">") + 1:] if ">" in body else body)
    return match.group(1) if match else ""


def _profile(token: str, name: str, width: int, height: int) -> str:
    return (f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{name}</tt:Name>'
            f'<tt:VideoEncoderConfiguration token="enc_{token}"><tt:Name>{name}</tt:Name><tt:UseCount>1</tt:UseCount>'
            f'<tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>{width}</tt:Width>'
            f'<tt:Height>{height}</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality>'
            '<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></trt:Profiles>')


def answer(device: OnvifDevice, envelope: str) -> tuple[int, str]:
    """(HTTP status, SOAP response) for one request to the device or media service."""
    if not check_username_token(envelope, device.credentials):
        return 400, ENVELOPE.format(body=(
            '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:NotAuthorized</s:Value>'
            '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">Sender not authorized</s:Text></s:Reason>'
            '</s:Fault>'))
    op = _operation(envelope)
    base = f"http://{device.host}:{device.port}/onvif"
    if op == "GetSystemDateAndTime":
        from datetime import UTC, datetime

        n = datetime.now(UTC)
        body = ('<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>'
                '<tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time>'
                f'<tt:Hour>{n.hour}</tt:Hour><tt:Minute>{n.minute}</tt:Minute><tt:Second>{n.second}</tt:Second>'
                f'</tt:Time><tt:Date><tt:Year>{n.year}</tt:Year><tt:Month>{n.month}</tt:Month><tt:Day>{n.day}</tt:Day>'
                '</tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>')
    elif op == "GetDeviceInformation":
        body = ('<tds:GetDeviceInformationResponse><tds:Manufacturer>Kuzet</tds:Manufacturer>'
                f'<tds:Model>KuzetSim</tds:Model><tds:FirmwareVersion>1.0</tds:FirmwareVersion>'
                f'<tds:SerialNumber>SIM{device.index:05d}</tds:SerialNumber><tds:HardwareId>sim</tds:HardwareId>'
                '</tds:GetDeviceInformationResponse>')
    elif op == "GetServices":
        body = "<tds:GetServicesResponse>" + "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{base}/{path}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for ns, path in ((DEVICE_NS, "device_service"), (MEDIA_NS, "media_service"))) + \
            "</tds:GetServicesResponse>"
    elif op == "GetCapabilities":
        body = ('<tds:GetCapabilitiesResponse><tds:Capabilities>'
                f'<tt:Device><tt:XAddr>{base}/device_service</tt:XAddr></tt:Device>'
                f'<tt:Media><tt:XAddr>{base}/media_service</tt:XAddr><tt:StreamingCapabilities>'
                '<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>'
                '<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>'
                '</tds:Capabilities></tds:GetCapabilitiesResponse>')
    elif op == "GetProfiles":
        body = ("<trt:GetProfilesResponse>" + _profile("main", "MainStream", device.width, device.height)
                + (_profile("sub", "SubStream", device.sub_width, device.sub_height) if device.rtsp_sub else "")
                + "</trt:GetProfilesResponse>")
    elif op in ("GetStreamUri", "GetSnapshotUri"):
        token = re.search(r"ProfileToken>\s*([^<\s]+)\s*<", envelope)
        token = token.group(1) if token else ""
        if token not in ("main", "sub") or (token == "sub" and not device.rtsp_sub):
            return 400, ENVELOPE.format(body=(
                '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>ter:InvalidArgVal</s:Value>'
                '</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">No such profile</s:Text></s:Reason>'
                '</s:Fault>'))
        if op == "GetStreamUri":
            uri = device.rtsp_main if token == "main" else device.rtsp_sub
        else:
            uri = f"{base}/snapshot.jpg"
        body = (f"<trt:{op}Response><trt:MediaUri><tt:Uri>{escape(uri or '')}</tt:Uri>"
                "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
                f"</trt:MediaUri></trt:{op}Response>")
    else:
        return 400, ENVELOPE.format(body=(
            '<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>ter:ActionNotSupported</s:Value>'
            f'</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en">{escape(op)} is not supported</s:Text>'
            '</s:Reason></s:Fault>'))
    return 200, ENVELOPE.format(body=body)


class DiscoveryResponder(asyncio.DatagramProtocol):
    """Answers WS-Discovery Probes for NetworkVideoTransmitters with one ProbeMatch per simulated camera."""

    def __init__(self, devices: list[OnvifDevice]) -> None:
        self.devices = devices
        self.transport: asyncio.DatagramTransport | None = None
        self.probes = 0

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        from wsdiscovery.actions.probematch import constructProbeMatch
        from wsdiscovery.message import createSOAPMessage, parseSOAPMessage
        from wsdiscovery.namespaces import NS_ACTION_PROBE
        from wsdiscovery.qname import QName
        from wsdiscovery.scope import Scope
        from wsdiscovery.service import Service

        try:
            env = parseSOAPMessage(data, addr[0])
        except Exception:  # noqa: BLE001 - anything on the multicast group may arrive; ignore what is not ours
            return
        if env is None or env.getAction() != NS_ACTION_PROBE:
            return
        wanted = [(t.getNamespace(), t.getLocalname()) for t in env.getTypes()]
        if wanted and NVT not in wanted:
            return
        self.probes += 1
        services = [Service([QName(NVT[0], NVT[1], "dn")], [Scope(s) for s in d.scopes], [d.xaddr], d.epr, 1)
                    for d in self.devices]
        reply = createSOAPMessage(constructProbeMatch(services, env.getMessageId()))
        if self.transport is not None:
            self.transport.sendto(reply.encode() if isinstance(reply, str) else reply, addr)


class OnvifFace:
    """WS-Discovery on ``host:discovery_port`` and the SOAP services of every device, each on its own port."""

    def __init__(self, devices: list[OnvifDevice], host: str = "127.0.0.1", discovery_port: int = 3702,
                 base_port: int = 0) -> None:
        self.devices = devices
        self.host = host
        self.discovery_port = discovery_port
        self.base_port = base_port
        self.responder: DiscoveryResponder | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._runners: list = []

    async def start(self) -> None:
        from aiohttp import web

        for n, device in enumerate(self.devices):
            app = web.Application(client_max_size=1 << 20)
            app.router.add_post("/onvif/device_service", self._soap(device))
            app.router.add_post("/onvif/media_service", self._soap(device))
            app.router.add_get("/onvif/snapshot.jpg", self._snapshot(device))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.base_port + n if self.base_port else 0, reuse_address=True)
            await site.start()
            device.port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp gives no other way
            self._runners.append(runner)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.discovery_port))
        if self.host in ("0.0.0.0", ""):  # on a real segment: the multicast group too
            with contextlib.suppress(OSError):
                mreq = struct.pack("4s4s", socket.inet_aton(MULTICAST[0]), socket.inet_aton("0.0.0.0"))
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.discovery_port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()
        self._transport, self.responder = await loop.create_datagram_endpoint(
            lambda: DiscoveryResponder(self.devices), sock=sock)

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    @staticmethod
    def _soap(device: OnvifDevice):  # noqa: ANN205
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            status, text = answer(device, await request.text())
            return web.Response(status=status, text=text, content_type="application/soap+xml", charset="utf-8")
        return handle

    @staticmethod
    def _snapshot(device: OnvifDevice):  # noqa: ANN205
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            if device.credentials:
                expected = "Basic " + base64.b64encode(device.credentials.encode()).decode()
                if request.headers.get("Authorization") != expected:
                    return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="kuzet-sim"'})
            return web.Response(body=device.snapshot, content_type="image/jpeg")
        return handle


def snapshot_of(clip_path) -> bytes:  # noqa: ANN001
    """A JPEG of a clip's first picture (decoded once, when the ONVIF face starts)."""
    import av
    import cv2

    with av.open(str(clip_path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="bgr24")
            return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
    return b""


def devices_for(cameras: list, host: str, rtsp_port: int, rtsp_host: str | None = None) -> list[OnvifDevice]:
    """An ONVIF device per simulated camera (``SimCamera``), with its RTSP URLs and a snapshot of its picture."""
    devices = []
    snapshots: dict = {}
    for cam in cameras:
        main_clip = cam.streams["main"][0]
        sub_clip = cam.streams["sub"][0] if "sub" in cam.streams else None
        if main_clip.path not in snapshots:
            snapshots[main_clip.path] = snapshot_of(main_clip.path)
        base = f"rtsp://{rtsp_host or host}:{rtsp_port}/cam{cam.index}"
        devices.append(OnvifDevice(cam.index, host, base, base + "/sub" if sub_clip else None, main_clip.width,
                                   main_clip.height, sub_clip.width if sub_clip else 640,
                                   sub_clip.height if sub_clip else 360, cam.credentials,
                                   snapshots[main_clip.path]))
    return devices
