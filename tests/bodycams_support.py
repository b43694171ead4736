"""Helpers of the body-worn camera tests: a real HTTP server on a free port (uvicorn in a thread, the test's own
installation), clips made with the real ffmpeg, the demo-like unit set up through the API."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kuzet.installation import Installation
from tests.browser_support import free_port


@contextmanager
def live_server(inst: Installation) -> Iterator[str]:
    import uvicorn

    from kuzet.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(inst), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def make_clip(path: Path, seconds: float = 2, codec: str = "mpeg4", size: str = "320x240",
              creation_time: str | None = None) -> Path:
    """A real clip (ffmpeg's test pattern and a tone). ``mpeg4`` in AVI is not browser-playable; ``libx264`` in MP4
    is."""
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    command = [ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
               f"testsrc=size={size}:rate=15:duration={seconds}", "-f", "lavfi", "-i",
               f"sine=frequency=440:duration={seconds}", "-c:v", codec, "-c:a", "aac" if codec == "libx264" else "mp2",
               "-shortest"]
    if codec == "libx264":
        command += ["-pix_fmt", "yuv420p"]
    if creation_time:
        command += ["-metadata", f"creation_time={creation_time}"]
    subprocess.run([*command, str(path)], check=True, capture_output=True)
    return path


def token(client, username: str, password: str) -> dict[str, str]:  # noqa: ANN001
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_for(base: str) -> None:
    httpx.get(f"{base}/api/v1/health", timeout=5).raise_for_status()


def nmea_rmc(seconds: int, lat0: str = "4450.928", lon0: str = "06528.938", corrupt: int | None = None) -> list[str]:
    """One ``$GPRMC`` fix a second (10:00:00 UTC on 1 March 2026 onwards) moving north-east; ``corrupt`` spoils the
    checksum of that sentence."""
    lines = []
    for s in range(seconds):
        lat = f"{lat0[:4]}.{int(lat0[5:]) + 3 * s:03d}"
        lon = f"{lon0[:5]}.{int(lon0[6:]) + 5 * s:03d}"
        body = f"GPRMC,1000{s:02d},A,{lat},N,{lon},E,022.4,084.4,010326,,"
        checksum = 0
        for ch in body:
            checksum ^= ord(ch)
        if s == corrupt:
            checksum ^= 0xFF
        lines.append(f"${body}*{checksum:02X}")
    return lines


def make_dashcam_clip(path: Path, seconds: int = 4, nmea: list[str] | None = None, location: str | None = None,
                      creation_time: str | None = None) -> Path:
    """An MP4 as a dash camera writes it, made with the real ffmpeg: H.264 video and a tone, the NMEA fixes in a
    ``tx3g`` text track (one sample a second), and/or an ISO 6709 ``location`` (``©xyz``)."""
    from kuzet.services.recording.ffmpeg import ffmpeg_binary

    command = [ffmpeg_binary(), "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
               f"testsrc=size=320x240:rate=15:duration={seconds}", "-f", "lavfi", "-i",
               f"sine=frequency=440:duration={seconds}"]
    maps = ["-map", "0:v", "-map", "1:a"]
    if nmea:
        srt = path.with_suffix(".srt")
        srt.write_text("\n".join(f"{n + 1}\n00:00:{n:02d},000 --> 00:00:{n:02d},999\n{line}\n"
                                 for n, line in enumerate(nmea)), encoding="utf-8")
        command += ["-i", str(srt)]
        maps += ["-map", "2:s", "-c:s", "mov_text", "-metadata:s:s:0", "handler_name=GPS"]
    command += [*maps, "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    if location:
        command += ["-metadata", f"location={location}"]
    if creation_time:
        command += ["-metadata", f"creation_time={creation_time}"]
    subprocess.run([*command, str(path)], check=True, capture_output=True)
    if nmea:
        path.with_suffix(".srt").unlink()
    return path


def add_novatek_gps(path: Path, fixes: list[tuple[str, float, str, float, str, float]],
                    date: tuple[int, int, int, int, int, int] = (10, 0, 0, 26, 3, 1)) -> Path:
    """Write Novatek ``freeGPS`` boxes into an MP4 made by ffmpeg (its ``moov`` last, as ffmpeg writes it without
    faststart), after the format's public description: one ``free`` atom per fix appended to the file, payload
    ``GPS `` and the fix 48 bytes from the atom's start (little-endian: hour, minute, second, year − 2000, month, day;
    status, hemispheres; latitude DDMM.MMMM, longitude DDDMM.MMMM, speed in knots, bearing), and a ``gps `` atom
    added to ``moov`` listing (offset, size) of each. ``fixes``: (status, lat, NS, lon, EW, knots), one a second
    from ``date`` (hour, minute, second, yy, month, day); an entry pointing nowhere is added too."""
    import struct

    data = bytearray(path.read_bytes())
    position, moov = 0, None
    while position < len(data):
        size, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"moov":
            moov = position
        position += size
    assert moov is not None and moov + struct.unpack(">I", data[moov:moov + 4])[0] == len(data), "moov is not last"
    hour, minute, second, yy, month, day = date
    atoms, entries = bytearray(), []
    index_size = 8 + 8 + 8 * (len(fixes) + 1)
    start = len(data) + index_size
    for n, (status, lat, ns, lon, ew, knots) in enumerate(fixes):
        body = bytearray(b"GPS " + bytes(36))  # 8 header bytes + 40: the fix starts 48 bytes in
        body += struct.pack("<6I", hour, minute, second + n, yy, month, day)
        body += status.encode() + ns.encode() + ew.encode() + b"\0"
        body += struct.pack("<4f", lat, lon, knots, 84.0)
        body += bytes(0x100 - 8 - len(body))  # cameras reserve a fixed block
        atom = struct.pack(">I4s", 8 + len(body), b"free") + body
        entries.append((start + len(atoms), len(atom)))
        atoms += atom
    entries.append((len(data) + 10**6, 0x100))  # a stale entry: points past the end of the file
    index = struct.pack(">I4s", index_size, b"gps ") + struct.pack(">II", 0x101, 0)
    index += b"".join(struct.pack(">II", offset, size) for offset, size in entries)
    moov_size = struct.unpack(">I", data[moov:moov + 4])[0] + len(index)
    data[moov:moov + 4] = struct.pack(">I", moov_size)
    path.write_bytes(bytes(data + index + atoms))
    return path


def add_metadata_track(source: Path, target: Path, entry: str, samples: list[tuple[float, float, bytes]]) -> Path:
    """Copy ``source`` (an MP4 ffmpeg made) into ``target`` with a timed metadata track beside its video and sound:
    ``samples`` are (start, duration in seconds, payload). PyAV's MP4 muxer writes a binary data stream as ``gpmd``
    (GoPro's sample entry); for ``camm`` that 20-byte sample entry is renamed in the written file (the same layout:
    reserved bytes and a data reference index), as Google's cameras write it."""
    import struct
    from fractions import Fraction

    import av

    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in src.streams if s.type in ("video", "audio")}
        data = out.add_data_stream(codec_name="bin_data")
        data.time_base = Fraction(1, 1000)
        for packet in src.demux(*[s for s in src.streams if s.index in streams]):
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
        for start, duration, payload in samples:
            packet = av.Packet(payload)
            packet.stream = data
            packet.time_base = data.time_base
            packet.pts = packet.dts = round(start * 1000)
            packet.duration = round(duration * 1000)
            out.mux(packet)
    if entry != "gpmd":
        written = target.read_bytes()
        sample_entry = struct.pack(">I4s", 20, b"gpmd")
        assert written.count(sample_entry) == 1
        target.write_bytes(written.replace(sample_entry, struct.pack(">I4s", 20, entry.encode())))
    return target


def gpmf_item(key: str, kind: str, size: int, repeat: int, payload: bytes) -> bytes:
    """One GPMF KLV item: key, type, struct size, repeat (big-endian), payload padded to 4 bytes."""
    import struct

    assert len(payload) == size * repeat
    return struct.pack(">4scBH", key.encode(), kind.encode() if kind else b"\0", size, repeat) + payload + bytes(
        -len(payload) % 4)


def gpmf_gps5(fixes: list[tuple[float, float, float]], gpsu: str, fix: int = 3) -> bytes:
    """A GPMF sample as a GoPro HERO5–10 writes it: DEVC → STRM with STNM, GPSF, GPSU, SCAL and GPS5 (lat, lon,
    alt, 2D and 3D speed); ``fixes``: (lat, lon, speed m/s)."""
    import struct

    scale = (10_000_000, 10_000_000, 1000, 1000, 100)
    rows = b"".join(struct.pack(">5l", round(lat * scale[0]), round(lon * scale[1]), 812_000, round(speed * 1000),
                                round(speed * 100)) for lat, lon, speed in fixes)
    name = b"GPS (Lat., Long., Alt., 2D speed, 3D speed)"
    strm = (gpmf_item("STNM", "c", len(name), 1, name) + gpmf_item("GPSF", "L", 4, 1, struct.pack(">L", fix))
            + gpmf_item("GPSU", "U", 16, 1, gpsu.encode()) + gpmf_item("GPSP", "S", 2, 1, struct.pack(">H", 200))
            + gpmf_item("SCAL", "l", 4, 5, struct.pack(">5l", *scale)) + gpmf_item("GPS5", "l", 20, len(fixes), rows))
    devc = gpmf_item("DVID", "L", 4, 1, struct.pack(">L", 1)) + gpmf_item("DVNM", "c", 11, 1, b"HERO10 Blk ") + (
        gpmf_item("STRM", "", 4, len(strm) // 4, strm))
    return gpmf_item("DEVC", "", 4, len(devc) // 4, devc)


def gpmf_gps9(fixes: list[tuple[float, float, float, int, float, int]]) -> bytes:
    """A GPMF sample as a GoPro HERO11–13 writes it: GPS9 of type ``?`` described by TYPE ``lllllllSS`` (lat, lon,
    alt, 2D and 3D speed, days since 2000, seconds of the day, DOP, fix), SCAL per field; ``fixes``: (lat, lon,
    speed m/s, days since 2000, seconds of the day, fix)."""
    import struct

    scale = (10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)
    rows = b"".join(struct.pack(">7l2H", round(lat * scale[0]), round(lon * scale[1]), 812_000, round(speed * 1000),
                                round(speed * 100), days, round(seconds * 1000), 150, fix)
                    for lat, lon, speed, days, seconds, fix in fixes)
    strm = (gpmf_item("STNM", "c", 3, 1, b"GPS") + gpmf_item("SCAL", "l", 4, 9, struct.pack(">9l", *scale))
            + gpmf_item("TYPE", "c", 9, 1, b"lllllllSS") + gpmf_item("GPS9", "?", 32, len(fixes), rows))
    return gpmf_item("DEVC", "", 4, len(strm) // 4 + 2, gpmf_item("STRM", "", 4, len(strm) // 4, strm))


def camm_gps(gps_seconds: float, lat: float, lon: float, east: float, north: float, fix: int = 3) -> bytes:
    """A CAMM type 6 packet (little-endian, packed): GPS-epoch time, fix type, lat, lon, altitude, accuracies,
    velocity east/north/up, speed accuracy."""
    import struct

    return struct.pack("<HH", 0, 6) + struct.pack("<di2d7f", gps_seconds, fix, lat, lon, 810.0, 3.0, 5.0, east,
                                                   north, 0.0, 0.5)


def camm_position(lat: float, lon: float) -> bytes:
    import struct

    return struct.pack("<HH", 0, 5) + struct.pack("<3d", lat, lon, 810.0)
