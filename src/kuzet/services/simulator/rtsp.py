"""A small RTSP/TCP server that plays looping H.264 clips as live cameras.

Written by hand (not GStreamer or aio-rtsp-toolkit) because tests and benchmarks need things those don't give from a
virtualenv: many cameras on one port, each with a main and a sub stream, credentials that can be refused, and cameras
that can be switched off, made to stall or to send garbage while their clients stay connected — controlled with an
RTSP ``SET_PARAMETER`` so a test can drive a simulator in another process.

A camera's picture runs on its own schedule from the moment the simulator starts (like a real camera); a client that
connects gets frames from the next keyframe on, paced in real time. Packets go out as RTP over the RTSP connection
(interleaved), FU-A fragmented (RFC 6184).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("kuzet.sim")

MAX_PAYLOAD = 1400  # like a real camera: one RTP packet fits an Ethernet frame
TICK = 0.02  # one scheduler for every session: cheap with hundreds of cameras


@dataclass
class Frame:
    offset: float  # seconds from the clip's start
    keyframe: bool
    nals: list[bytes]


@dataclass
class Clip:
    path: Path
    fps: float
    duration: float
    sps: bytes
    pps: bytes
    frames: list[Frame]
    width: int
    height: int

    @classmethod
    def load(cls, path: Path) -> Clip:
        """Demux an H.264 MP4 (no decoding) into access units split into NAL units."""
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.codec_context.name != "h264":
                raise ValueError(f"{path}: the simulator plays H.264 clips, not {stream.codec_context.name}")
            extradata = bytes(stream.codec_context.extradata or b"")
            sps, pps, length_size = _parse_avcc(extradata)
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            frames: list[Frame] = []
            tb = float(stream.time_base)
            first = None
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                first = packet.pts if first is None else first
                nals = _split_avcc(bytes(packet), length_size)
                frames.append(Frame((packet.pts - first) * tb, packet.is_keyframe, nals))
            width, height = stream.codec_context.width, stream.codec_context.height
        frames.sort(key=lambda f: f.offset)
        if not frames or not frames[0].keyframe:
            raise ValueError(f"{path}: clip must start with a keyframe")
        duration = frames[-1].offset + 1.0 / rate
        return cls(path, rate, duration, sps, pps, frames, width, height)

    def sdp_fmtp(self) -> str:
        profile = self.sps[1:4].hex().upper()
        sets = ",".join(base64.b64encode(x).decode() for x in (self.sps, self.pps))
        return f"packetization-mode=1;profile-level-id={profile};sprop-parameter-sets={sets}"


def _parse_avcc(extra: bytes) -> tuple[bytes, bytes, int]:
    if not extra or extra[0] != 1:
        raise ValueError("clip has no avcC configuration (is it an MP4 with H.264?)")
    length_size = (extra[4] & 3) + 1
    pos = 5
    n_sps = extra[pos] & 0x1F
    pos += 1
    sps_list = []
    for _ in range(n_sps):
        (n,) = struct.unpack_from(">H", extra, pos)
        sps_list.append(extra[pos + 2:pos + 2 + n])
        pos += 2 + n
    n_pps = extra[pos]
    pos += 1
    pps_list = []
    for _ in range(n_pps):
        (n,) = struct.unpack_from(">H", extra, pos)
        pps_list.append(extra[pos + 2:pos + 2 + n])
        pos += 2 + n
    return sps_list[0], pps_list[0], length_size


def _split_avcc(data: bytes, length_size: int) -> list[bytes]:
    nals, pos = [], 0
    while pos + length_size <= len(data):
        n = int.from_bytes(data[pos:pos + length_size], "big")
        nals.append(data[pos + length_size:pos + length_size + n])
        pos += length_size + n
    return nals


def packetize(nals: list[bytes], max_payload: int = MAX_PAYLOAD) -> list[tuple[bytes, bool]]:
    """RTP payloads for one access unit (single NAL or FU-A fragments), with the marker on the last."""
    out: list[tuple[bytes, bool]] = []
    for i, nal in enumerate(nals):
        last_nal = i == len(nals) - 1
        if len(nal) <= max_payload:
            out.append((nal, last_nal))
            continue
        header = nal[0]
        indicator = (header & 0xE0) | 28
        body = nal[1:]
        step = max_payload - 2
        for off in range(0, len(body), step):
            start = off == 0
            end = off + step >= len(body)
            fu_header = (0x80 if start else 0) | (0x40 if end else 0) | (header & 0x1F)
            out.append((bytes((indicator, fu_header)) + body[off:off + step], last_nal and end))
    return out


@dataclass
class PreparedFrame:
    """An access unit as interleaved RTP packets, with the offsets where sequence number and timestamp go."""

    offset: float
    keyframe: bool
    data: bytes
    header_offsets: list[int]


def prepare(clip: Clip, max_payload: int) -> list[PreparedFrame]:
    prepared = []
    for frame in clip.frames:
        nals = ([clip.sps, clip.pps] if frame.keyframe else []) + [
            n for n in frame.nals if (n[0] & 0x1F) not in (7, 8, 9)]
        buf = bytearray()
        offsets = []
        for payload, marker in packetize(nals, max_payload):
            rtp_len = 12 + len(payload)
            buf += b"$\x00" + struct.pack(">H", rtp_len)
            offsets.append(len(buf))
            buf += struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | 96, 0, 0, 0) + payload
        prepared.append(PreparedFrame(frame.offset, frame.keyframe, bytes(buf), offsets))
    return prepared


@dataclass
class SimCamera:
    """One simulated camera: a main and a sub stream on their own schedule."""

    index: int
    streams: dict[str, tuple[Clip, list[PreparedFrame]]]
    credentials: str | None = None  # "user:password" required, if set
    mode: str = "normal"  # normal | off | stall | garbage
    epoch: float = field(default_factory=time.monotonic)
    sent_frames: int = 0


class Session:
    def __init__(self, server: SimServer, writer: asyncio.StreamWriter, camera: SimCamera, stream: str) -> None:
        self.server = server
        self.writer = writer
        self.camera = camera
        self.stream = stream
        clip, prepared = camera.streams[stream]
        self.clip = clip
        self.prepared = prepared
        self.seq = random.randint(0, 0xFFFF)
        self.ssrc = random.getrandbits(32)
        self.ts_base = random.getrandbits(31)
        self.playing = False
        self.next_index: int | None = None  # absolute frame number (loops * len + i)
        self.waiting_keyframe = True

    def start(self) -> None:
        now = time.monotonic()
        n = len(self.prepared)
        elapsed = now - self.camera.epoch
        loops, pos = divmod(elapsed, self.clip.duration)
        i = next((k for k, f in enumerate(self.prepared) if f.offset >= pos), n)
        self.next_index = int(loops) * n + i
        self.playing = True

    def due_time(self, absolute: int) -> float:
        n = len(self.prepared)
        loops, i = divmod(absolute, n)
        return self.camera.epoch + loops * self.clip.duration + self.prepared[i].offset

    def pump(self, now: float) -> None:
        """Send every frame that is due; a client that cannot keep up loses frames up to the next keyframe."""
        if not self.playing or self.next_index is None or self.camera.mode == "stall":
            if self.camera.mode == "stall" and self.next_index is not None:
                while self.due_time(self.next_index) <= now:
                    self.next_index += 1
            return
        n = len(self.prepared)
        chunks = []
        while self.due_time(self.next_index) <= now:
            absolute = self.next_index
            self.next_index += 1
            loops, i = divmod(absolute, n)
            frame = self.prepared[i]
            if self.waiting_keyframe and not frame.keyframe:
                continue
            self.waiting_keyframe = False
            if self.writer.transport.get_write_buffer_size() > 8 << 20:
                self.waiting_keyframe = True  # the client is too slow: skip to the next keyframe
                continue
            ts = (self.ts_base + int((loops * self.clip.duration + frame.offset) * 90000)) & 0xFFFFFFFF
            data = bytearray(frame.data)
            for off in frame.header_offsets:
                struct.pack_into(">HII", data, off + 2, self.seq, ts, self.ssrc)
                self.seq = (self.seq + 1) & 0xFFFF
            if self.camera.mode == "garbage":
                for off in frame.header_offsets:
                    end = min(len(data), off + 12 + 64)
                    data[off + 12:end] = os.urandom(end - off - 12)
            chunks.append(bytes(data))
            self.camera.sent_frames += 1
            self.server.sent_bytes += len(data)
        if chunks:
            self.writer.write(b"".join(chunks))


class SimServer:
    """``rtsp://HOST:PORT/camK`` (main) and ``rtsp://HOST:PORT/camK/sub`` for K in 1..N."""

    def __init__(self, cameras: list[SimCamera], host: str = "127.0.0.1", port: int = 8554) -> None:
        self.cameras = {c.index: c for c in cameras}
        self.host = host
        self.port = port
        self.sessions: set[Session] = set()
        self._server: asyncio.AbstractServer | None = None
        self._ticker: asyncio.Task | None = None
        self.sent_bytes = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._server:
            self._server.close()
        for session in list(self.sessions):
            session.writer.close()
        self.sessions.clear()

    async def serve_forever(self, on_ready: Callable[[int], None] | None = None) -> None:
        """Listen and serve until cancelled; ``on_ready(port)`` once the port is bound (the real one for port 0)."""
        await self.start()
        assert self._server is not None
        if on_ready is not None:
            on_ready(self.port)
        await self._server.serve_forever()

    def url(self, index: int, stream: str = "main", credentials: str | None = None) -> str:
        auth = f"{credentials}@" if credentials else ""
        return f"rtsp://{auth}{self.host}:{self.port}/cam{index}" + ("/sub" if stream == "sub" else "")

    def set_mode(self, index: int, mode: str) -> None:
        if mode not in ("normal", "off", "stall", "garbage"):
            raise ValueError(f"unknown mode {mode!r}")
        camera = self.cameras[index]
        camera.mode = mode
        if mode == "off":
            for session in [s for s in self.sessions if s.camera is camera]:
                session.writer.close()
                self.sessions.discard(session)

    async def _tick(self) -> None:
        while True:
            now = time.monotonic()
            for session in list(self.sessions):
                try:
                    session.pump(now)
                except Exception:  # one broken client never stops the others
                    log.exception("sim session failed")
                    self.sessions.discard(session)
                    session.writer.close()
            await asyncio.sleep(TICK)

    def _resolve(self, url: str) -> tuple[SimCamera, str] | None:
        path = url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url
        parts = [p for p in path.split("?")[0].split("/") if p and not p.startswith("trackID")]
        if not parts or not parts[0].startswith("cam") or not parts[0][3:].isdigit():
            return None
        camera = self.cameras.get(int(parts[0][3:]))
        stream = "sub" if len(parts) > 1 and parts[1] == "sub" else "main"
        if camera is None or stream not in camera.streams:
            return None
        return camera, stream

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session: Session | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"$"):
                    continue
                lines = head.decode("latin-1").split("\r\n")
                method, url, _ = (lines[0].split(" ") + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = b""
                if int(headers.get("content-length", 0) or 0):
                    body = await reader.readexactly(int(headers["content-length"]))
                cseq = headers.get("cseq", "0")
                reply = self._answer(method, url, headers, body, writer, session)
                status, extra, content, new_session = reply
                if new_session is not None:
                    session = new_session
                out = f"RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: kuzet-sim\r\n"
                for k, v in extra.items():
                    out += f"{k}: {v}\r\n"
                out += f"Content-Length: {len(content)}\r\n\r\n"
                writer.write(out.encode("latin-1") + content)
                await writer.drain()
                if method == "PLAY" and session is not None and status.startswith("200"):
                    session.start()
                    self.sessions.add(session)
                if method == "TEARDOWN" or not status.startswith(("200", "401")):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            if session is not None:
                self.sessions.discard(session)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _answer(self, method, url, headers, body, writer, session):  # noqa: ANN001, ANN202, C901
        if method == "OPTIONS":
            return "200 OK", {"Public": "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER"}, \
                b"", None
        resolved = self._resolve(url)
        if resolved is None:
            return "404 Not Found", {}, b"", None
        camera, stream = resolved
        if method == "SET_PARAMETER" and body:
            # Control channel for tests: "mode: stall" etc.
            for line in body.decode().splitlines():
                if line.startswith("mode:"):
                    try:
                        self.set_mode(camera.index, line.split(":", 1)[1].strip())
                    except ValueError:
                        return "451 Parameter Not Understood", {}, b"", None
            return "200 OK", {}, b"", None
        if camera.mode == "off":
            return "404 Not Found", {}, b"", None
        if camera.credentials:
            auth = headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(camera.credentials.encode()).decode()
            if auth != expected:
                return "401 Unauthorized", {"WWW-Authenticate": 'Basic realm="kuzet-sim"'}, b"", None
        clip, _ = camera.streams[stream]
        base = url.split("/trackID")[0].rstrip("/")
        if method == "DESCRIBE":
            sdp = (
                "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Kuzet simulated camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
                "a=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                f"a=fmtp:96 {clip.sdp_fmtp()}\r\na=framerate:{clip.fps:g}\r\na=control:trackID=0\r\n"
            ).encode()
            return "200 OK", {"Content-Base": base + "/", "Content-Type": "application/sdp"}, sdp, None
        if method == "SETUP":
            transport = headers.get("transport", "")
            if "TCP" not in transport.upper():
                return "461 Unsupported Transport", {}, b"", None
            new = Session(self, writer, camera, stream)
            return "200 OK", {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1",
                              "Session": f"{id(new):x};timeout=60"}, b"", new
        if method == "PLAY":
            if session is None:
                return "455 Method Not Valid in This State", {}, b"", None
            return "200 OK", {"Session": f"{id(session):x}", "Range": "npt=0.000-",
                              "RTP-Info": f"url={base}/trackID=0;seq={session.seq};rtptime={session.ts_base}"}, \
                b"", None
        if method in ("GET_PARAMETER", "SET_PARAMETER"):
            return "200 OK", {}, b"", None
        if method == "TEARDOWN":
            return "200 OK", {}, b"", None
        return "405 Method Not Allowed", {}, b"", None


def build_cameras(count: int, main: Path, sub: Path | None, *, max_payload: int = MAX_PAYLOAD,
                  credentials: dict[int, str] | None = None,
                  scenes: dict[int, tuple[Path, Path | None]] | None = None) -> list[SimCamera]:
    """``count`` cameras, each on its own schedule, playing ``main`` / ``sub`` — or, for the camera numbers in
    ``scenes``, that camera's own main and sub clips. A clip played by several cameras is held in memory once."""
    loaded: dict[tuple[Path, int], tuple[Clip, list[PreparedFrame]]] = {}

    def streams_of(main_path: Path, sub_path: Path | None) -> dict[str, tuple[Clip, list[PreparedFrame]]]:
        streams: dict[str, tuple[Clip, list[PreparedFrame]]] = {}
        for name, path in (("main", main_path), ("sub", sub_path)):
            if path is None:
                continue
            key = (Path(path), max_payload)
            if key not in loaded:
                clip = Clip.load(Path(path))
                loaded[key] = (clip, prepare(clip, max_payload))
            streams[name] = loaded[key]
        return streams

    default = streams_of(main, sub)
    per_camera = {k: streams_of(m, s) for k, (m, s) in (scenes or {}).items() if 1 <= k <= count}
    now = time.monotonic()
    cameras = []
    for k in range(1, count + 1):
        streams = per_camera.get(k, default)
        # Spread keyframes over time, as independent cameras do.
        epoch = now - random.uniform(0, streams["main"][0].duration)
        cameras.append(SimCamera(k, streams, (credentials or {}).get(k), epoch=epoch))
    return cameras


def send_control(host: str, port: int, index: int, mode: str, timeout: float = 5.0) -> None:
    """Switch a camera of a simulator running in another process (``normal``, ``off``, ``stall``, ``garbage``)."""
    import socket

    body = f"mode: {mode}\r\n".encode()
    req = (f"SET_PARAMETER rtsp://{host}:{port}/cam{index} RTSP/1.0\r\nCSeq: 1\r\n"
           f"Content-Type: text/parameters\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(req)
        answer = sock.recv(4096).decode("latin-1")
    if " 200 " not in answer.split("\r\n", 1)[0]:
        raise RuntimeError(f"simulator refused mode {mode!r}: {answer.splitlines()[0] if answer else 'no answer'}")


class SimThread:
    """A simulator running in a thread of this process (its own event loop), for tests and benchmarks that need to
    know its schedule or switch its cameras: ``SimThread(build_cameras(…))``; ``url(k)``; ``set_mode(k, "off")``."""

    def __init__(self, cameras: list[SimCamera], host: str = "127.0.0.1", port: int = 0) -> None:
        import threading

        self.server = SimServer(cameras, host, port)
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True, name="kuzet-sim")
        self.thread.start()
        if not started.wait(30):
            raise RuntimeError("the simulator did not start within 30 s")

    def url(self, index: int, stream: str = "main", credentials: str | None = None) -> str:
        return self.server.url(index, stream, credentials)

    def set_mode(self, index: int, mode: str) -> None:
        """``normal``, ``off``, ``stall`` or ``garbage``, applied on the simulator's loop."""
        asyncio.run_coroutine_threadsafe(self._set_mode(index, mode), self.loop).result(5)

    async def _set_mode(self, index: int, mode: str) -> None:
        self.server.set_mode(index, mode)

    def start_onvif(self, host: str = "127.0.0.1", discovery_port: int = 0):  # noqa: ANN201
        """Give every camera its ONVIF face (``simulator/onvif.py``) on this simulator's loop; returns it."""
        from kuzet.services.simulator.onvif import OnvifFace, devices_for

        face = OnvifFace(devices_for(list(self.server.cameras.values()), host, self.server.port), host,
                         discovery_port)
        asyncio.run_coroutine_threadsafe(face.start(), self.loop).result(60)
        self.onvif = face
        return face

    def close(self) -> None:
        face = getattr(self, "onvif", None)
        if face is not None:
            asyncio.run_coroutine_threadsafe(face.stop(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
