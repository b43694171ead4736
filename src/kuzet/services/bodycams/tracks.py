"""GPS tracks of dash cameras, kept as track points of a recording and shown on the map along its video:

- inside the MP4/MOV: a **text track of NMEA sentences** (``tx3g``/``mov_text`` or a plain text track, one or more
  ``$GPRMC``/``$GNRMC`` per sample, as many Ambarella- and Novatek-based dash cameras write beside their G-sensor
  readings), and the **ISO 6709 location** of the file (``©xyz`` in QuickTime user data, the ``location`` key PyAV
  and FFmpeg read: one point, where the recording began);
- inside the MP4/MOV, **Novatek ``freeGPS`` boxes**, the binary GPS of most cheap dash cameras: a ``gps `` atom in
  ``moov`` lists (offset, size) pairs, big-endian, after 8 bytes of version and date; each points at a ``free`` atom
  whose payload begins ``GPS ``, and 48 bytes from the atom's start holds one fix, little-endian: hour, minute,
  second, year (− 2000), month, day as 32-bit integers, then the status (``A``: valid), the latitude's and the
  longitude's hemisphere letters and a spare byte, then latitude ``DDMM.MMMM``, longitude ``DDDMM.MMMM`` and speed
  (knots) as 32-bit floats. Entries that do not point at such an atom, or hold no valid fix, are skipped;
- beside it: NMEA or GPX side files, kept beside the original, read-only.

Other vendor-binary GPS (GoPro GPMF, 70mai ``GPS ``, Novatek files without the ``gps `` index, encrypted variants)
is not read: each needs its own decoder."""

from __future__ import annotations

import logging
import os
import re
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kuzet.store.models.bodycams import BodycamRecording, BodycamTrackPoint

MAX_POINTS = 200_000
TEXT_CODECS = {"mov_text", "text", "subrip", "srt", "ass", "ssa", "webvtt"}
ISO6709 = re.compile(r"^\s*([+-]\d{1,2}(?:\.\d+)?)([+-]\d{1,3}(?:\.\d+)?)")

log = logging.getLogger("kuzet.bodycams")


class TrackError(ValueError):
    """The side file cannot be read as a track (names the line or element)."""


def _nmea_checksum_ok(sentence: str) -> bool:
    if "*" not in sentence:
        return True
    body, _, checksum = sentence[1:].partition("*")
    value = 0
    for ch in body:
        value ^= ord(ch)
    try:
        return value == int(checksum[:2], 16)
    except ValueError:
        return False


def _nmea_angle(value: str, hemisphere: str) -> float:
    degrees_len = 2 if hemisphere in "NS" else 3
    angle = int(value[:degrees_len]) + float(value[degrees_len:]) / 60
    return -angle if hemisphere in "SW" else angle


def parse_nmea(text: str) -> list[tuple[datetime, float, float, float | None]]:
    """Fixes of the RMC sentences with status A (valid); others are skipped. Raises TrackError naming a bad line."""
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line.startswith("$") or line[3:6] != "RMC":
            continue
        name = line[:6]
        if not _nmea_checksum_ok(line):
            raise TrackError(f"line {number} ({name}): the NMEA checksum does not match")
        fields = line.split("*")[0].split(",")
        try:
            if fields[2] != "A":
                continue
            hhmmss, ddmmyy = fields[1], fields[9]
            at = datetime(2000 + int(ddmmyy[4:6]), int(ddmmyy[2:4]), int(ddmmyy[0:2]), int(hhmmss[0:2]),
                          int(hhmmss[2:4]), int(float(hhmmss[4:])), tzinfo=UTC)
            lat, lon = _nmea_angle(fields[3], fields[4]), _nmea_angle(fields[5], fields[6])
            speed = float(fields[7]) * 1.852 if fields[7] else None
        except (IndexError, ValueError):
            raise TrackError(f"line {number} ({name}): not a valid RMC sentence") from None
        points.append((at, lat, lon, speed))
    return points


def parse_gpx(text: str) -> list[tuple[datetime, float, float, float | None]]:
    try:
        root = ET.fromstring(text)  # noqa: S314 - GPX from the installation's own docking stations
    except ET.ParseError as exc:
        raise TrackError(f"not GPX: {exc}") from None
    points = []
    for element in root.iter():
        if not element.tag.endswith("trkpt"):
            continue
        try:
            lat, lon = float(element.attrib["lat"]), float(element.attrib["lon"])
            time_text = next(c.text for c in element if c.tag.endswith("time"))
            at = datetime.fromisoformat(time_text.strip().replace("Z", "+00:00"))
        except (KeyError, ValueError, StopIteration, AttributeError):
            raise TrackError("a <trkpt> without lat, lon or time") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        points.append((at, lat, lon, None))
    return points


def parse_track(path: Path) -> list[tuple[datetime, float, float, float | None]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    points = parse_gpx(text) if path.suffix.lower() == ".gpx" else parse_nmea(text)
    if len(points) > MAX_POINTS:
        raise TrackError(f"more than {MAX_POINTS} points")
    for _at, lat, lon, _speed in points:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise TrackError(f"a point outside the globe: {lat}, {lon}")
    return points


def _sample_text(data: bytes, codec: str) -> str:
    """A text sample's words: a ``tx3g`` sample starts with its 16-bit length (style boxes may follow the text)."""
    if codec == "mov_text" and len(data) >= 2:
        size = int.from_bytes(data[:2], "big")
        data = data[2:2 + size]
    return data.decode("utf-8", errors="replace")


def parse_location(value: str, at: datetime) -> list[tuple[datetime, float, float, float | None]]:
    """ISO 6709 (``+44.8488+065.4823/``, altitude ignored) as one point at ``at``; [] when it is not one."""
    match = ISO6709.match(value or "")
    if not match:
        return []
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return []
    return [(at, lat, lon, None)]


Point = tuple[datetime, float, float, float | None]

FREE_GPS_FIX = struct.Struct("<6I4s3f")  # hour … day, status + hemispheres + spare, lat, lon, speed (knots)
FREE_GPS_AT = 48  # where the fix starts in its ``free`` atom


def _atoms(f, start: int, end: int):  # noqa: ANN001, ANN202 - a binary file; yields (type, start, body, end)
    """The atoms between ``start`` and ``end``: their type, where they start, where their body starts and ends."""
    position = start
    while position + 8 <= end:
        f.seek(position)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head[:8])
        body = position + 8
        if size == 1 and len(head) == 16:
            size, body = struct.unpack(">Q", head[8:16])[0], position + 16
        elif size == 0:
            size = end - position
        if size < body - position or position + size > end:
            return  # a broken atom: nothing after it can be trusted
        yield kind, position, body, position + size
        position += size


def _novatek_fix(data: bytes) -> Point | None:
    hour, minute, second, year, month, day, flags, lat, lon, knots = FREE_GPS_FIX.unpack_from(data, FREE_GPS_AT)
    status, ns, ew = chr(flags[0]), chr(flags[1]), chr(flags[2])
    if status != "A" or ns not in "NS" or ew not in "EW":
        return None
    try:
        at = datetime(2000 + year if year < 100 else year, month, day, hour, minute, second, tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    lat_deg = int(lat / 100) + (lat % 100) / 60
    lon_deg = int(lon / 100) + (lon % 100) / 60
    lat_deg, lon_deg = (-lat_deg if ns == "S" else lat_deg), (-lon_deg if ew == "W" else lon_deg)
    if not (-90 <= lat_deg <= 90 and -180 <= lon_deg <= 180) or not (0 <= knots < 1000):
        return None
    return at, lat_deg, lon_deg, knots * 1.852


def parse_free_gps(path: Path) -> list[Point]:
    """The fixes of a Novatek MP4's ``freeGPS`` boxes (see the module's docstring); [] when it has none."""
    points: list[Point] = []
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except OSError:
        return []
    with f:
        for kind, _start, body, end in _atoms(f, 0, size):
            if kind != b"moov":
                continue
            for child, _c_start, c_body, c_end in _atoms(f, body, end):
                if child != b"gps ":
                    continue
                f.seek(c_body + 8)  # version, date
                index = f.read(max(0, min(c_end - c_body - 8, 8 * MAX_POINTS)))
                for offset, length in struct.iter_unpack(">II", index[:len(index) - len(index) % 8]):
                    if length < FREE_GPS_AT + FREE_GPS_FIX.size or length > 1 << 20 or offset + length > size:
                        continue
                    f.seek(offset)
                    data = f.read(length)
                    if data[4:12] != b"freeGPS " or struct.unpack(">I", data[:4])[0] != length:
                        continue
                    fix = _novatek_fix(data)
                    if fix is not None:
                        points.append(fix)
    return points


def embedded_track(path: Path, started_at: datetime | None) -> tuple[str | None, list[Point]]:
    """GPS carried inside a video file: NMEA sentences in its text tracks, else Novatek ``freeGPS`` boxes, else its
    ISO 6709 location (a point at ``started_at``). ``(source, points)``; ``(None, [])`` when it carries none. Raises
    TrackError naming a bad sentence (a wrong checksum), never for a file that is not a video (that is the index's
    business)."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception:  # noqa: BLE001 - not a video: no track either
        return None, []
    with container:
        texts = [s for s in container.streams if s.type in ("subtitle", "data")
                 and (s.codec_context is None or s.codec_context.name in TEXT_CODECS)]
        points: list[tuple[datetime, float, float, float | None]] = []
        if texts:
            codecs = {s.index: s.codec_context.name if s.codec_context else "" for s in texts}
            for packet in container.demux(*texts):
                if packet.size:
                    text = _sample_text(bytes(packet), codecs[packet.stream.index])
                    points += parse_nmea(text)
                    if len(points) > MAX_POINTS:
                        raise TrackError(f"more than {MAX_POINTS} points")
        if points:
            return "mp4 text track (NMEA)", points
        points = parse_free_gps(path)
        if points:
            return "mp4 freeGPS (Novatek)", points
        location = container.metadata.get("location") or container.metadata.get("location-eng")
        if location and started_at is not None:
            point = parse_location(location, started_at)
            if point:
                return "mp4 location (ISO 6709)", point
    return None, []


def store_track(session: Session, recording: BodycamRecording,
                points: list[tuple[datetime, float, float, float | None]]) -> int:
    """Replace the recording's track with ``points`` (GPS time is satellite time: no clock offset applies)."""
    session.execute(delete(BodycamTrackPoint).where(BodycamTrackPoint.recording_id == recording.id))
    for at, lat, lon, speed in sorted(points):
        session.add(BodycamTrackPoint(recording_id=recording.id, at=at, lat=lat, lon=lon, speed_kmh=speed))
    if points:
        first = min(points)
        recording.lat, recording.lon = first[1], first[2]
    return len(points)


def attach_side_files(session: Session, recording: BodycamRecording, side_files: list[Path],
                      root: Path | None = None) -> int:
    """Read the first readable side file into the recording's track; keep the files beside the original."""
    count = 0
    for path in side_files:
        points = parse_track(path)
        if points and count == 0:
            count = store_track(session, recording, points)
        if root is not None:
            target = (root / recording.path).with_name(f"{Path(recording.path).stem}-track{path.suffix.lower()}")
            os.replace(path, target)
            os.chmod(target, 0o400)
    return count


def track_of(session: Session, recording_id: int) -> list[BodycamTrackPoint]:
    return list(session.scalars(select(BodycamTrackPoint).where(BodycamTrackPoint.recording_id == recording_id)
                                .order_by(BodycamTrackPoint.at)))


def near_clause(lat: float, lon: float, radius_m: float):  # noqa: ANN201 - a SQL clause
    """Recordings with a GPS fix within ``radius_m`` of a point (a bounding box on the track points; small radii)."""
    import math

    from sqlalchemy import exists

    dlat = radius_m / 111_320
    dlon = radius_m / max(1.0, 111_320 * math.cos(math.radians(lat)))
    return exists().where(BodycamTrackPoint.recording_id == BodycamRecording.id,
                          BodycamTrackPoint.lat.between(lat - dlat, lat + dlat),
                          BodycamTrackPoint.lon.between(lon - dlon, lon + dlon)) | (
        BodycamRecording.lat.between(lat - dlat, lat + dlat) & BodycamRecording.lon.between(lon - dlon, lon + dlon))
