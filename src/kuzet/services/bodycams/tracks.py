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
- inside the MP4/MOV, a **GoPro GPMF** metadata track (sample entry ``gpmd``): KLV (4-byte key, type, struct size,
  16-bit repeat, payload padded to 4 bytes; type 0 nests) of ``DEVC`` → ``STRM`` holding ``GPS5`` (lat, lon, alt,
  2D and 3D speed as int32, divided by ``SCAL``; the sample's UTC time in ``GPSU``, its fix in ``GPSF``) or ``GPS9``
  (the same five, then days since 2000 and seconds of the day, DOP and fix: every fix carries its own time);
- inside the MP4/MOV, a **Google CAMM** metadata track (sample entry ``camm``, the Street View camera format many
  360°/dash cameras write): little-endian packets ``reserved:u16, type:u16``; type 6 a full GPS fix (GPS-epoch time,
  fix type, lat, lon as doubles, velocities east/north), type 5 a bare position at the sample's time;
- beside it: NMEA or GPX side files, kept beside the original, read-only.

GPMF and CAMM are decoded here by hand (a hundred lines over ``struct``): PyPI's GPMF readers are an old unmaintained
one (``gpmf`` 0.1, 2020) and a beta fork (``pygpmf-oz``) that drags geopandas, contextily, matplotlib and
ffmpeg-python into a server and reads ``GPS9`` as if all its fields were int32; none reads CAMM. PyAV demuxes the
tracks' samples (sample tables, 64-bit offsets); the atom walk below only tells which track is which.

Other vendor-binary GPS (70mai ``GPS ``, Novatek files without the ``gps `` index, encrypted variants) is not read:
each needs its own decoder."""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kuzet.store.models.bodycams import BodycamRecording, BodycamTrackPoint

MAX_POINTS = 200_000
BINARY_ENTRIES = {b"gpmd", b"camm", b"tmcd"}  # metadata tracks that are not text
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


def sample_entries(path: Path) -> list[bytes]:
    """The sample entry type of each track (``avc1``, ``mp4a``, ``gpmd``, ``camm`` …), in the file's order, which is
    the order of PyAV's streams; [] for a file that is not MP4/MOV."""
    kinds: list[bytes] = []
    try:
        size = path.stat().st_size
        f = path.open("rb")
    except OSError:
        return []
    path_to_stsd = (b"mdia", b"minf", b"stbl", b"stsd")
    with f:
        for kind, _start, body, end in _atoms(f, 0, size):
            if kind != b"moov":
                continue
            for trak, _t_start, t_body, t_end in _atoms(f, body, end):
                if trak != b"trak":
                    continue
                found = b""
                spans = [(t_body, t_end)]
                for name in path_to_stsd:
                    spans = [(b, e) for k, _s, b, e in _atoms(f, *spans[0]) if k == name] if spans else []
                if spans:
                    f.seek(spans[0][0] + 8)  # version, flags, entry count
                    head = f.read(8)
                    found = head[4:8] if len(head) == 8 else b""
                kinds.append(found)
    return kinds


# --- GoPro GPMF ------------------------------------------------------------------------------------------------------

GPMF_FORMATS = {"b": "b", "B": "B", "c": "c", "d": "d", "f": "f", "F": "4s", "j": "q", "J": "Q", "l": "l", "L": "L",
                "s": "h", "S": "H", "q": "i", "Q": "q"}
GPS_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)


def _klv(data: bytes, start: int, end: int):  # noqa: ANN202 - yields (key, type, struct size, repeat, body start)
    position = start
    while position + 8 <= end:
        key, kind, size, repeat = struct.unpack_from(">4scBH", data, position)
        body = position + 8
        length = size * repeat
        if body + length > end:
            return  # a cut payload: what follows cannot be trusted
        yield key, kind, size, repeat, body
        position = body + ((length + 3) & ~3)


def _gpmf_values(data: bytes, kind: bytes, size: int, repeat: int, body: int, complex_type: str = "") -> list:
    """The samples of one KLV item: each a tuple of its fields (one field for a plain number), or a str."""
    if kind in (b"c", b"U"):
        return [data[body:body + size * repeat].split(b"\0")[0].decode("ascii", errors="replace")]
    fields = complex_type if kind == b"?" else kind.decode("ascii", errors="replace")
    try:
        one = struct.Struct(">" + "".join(GPMF_FORMATS[c] for c in fields))
    except KeyError:
        return []
    count = size // one.size if one.size else 0
    sample = struct.Struct(">" + "".join(GPMF_FORMATS[c] for c in fields) * max(1, count))
    if sample.size != size:
        return []
    return [sample.unpack_from(data, body + i * size) for i in range(repeat)]


def _gpsu(text: str) -> datetime | None:
    """``yymmddhhmmss.sss`` in UTC."""
    try:
        return datetime.strptime(text[:16], "%y%m%d%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_gpmf(payload: bytes, sample_at: datetime | None, sample_seconds: float) -> list[Point]:
    """The fixes in one GPMF sample. ``GPS5``: timed from ``GPSU`` (else ``sample_at``, the sample's place in the
    recording), spread evenly over the sample's duration, none without a fix (``GPSF`` 0); ``GPS9``: each its own
    time, skipped without a fix. Speed is the 2D speed (m/s → km/h)."""
    points: list[Point] = []
    for key, _k, _s, _r, body in _klv(payload, 0, len(payload)):
        if key != b"DEVC":
            continue
        for s_key, _sk, s_size, s_repeat, s_body in _klv(payload, body, body + _s * _r):
            if s_key != b"STRM":
                continue
            scale: list[float] = [1.0]
            complex_type, utc, fix = "", None, None
            for item, kind, size, repeat, at in _klv(payload, s_body, s_body + s_size * s_repeat):
                if item == b"SCAL":  # one divisor, or one per field (as repeats or as one struct)
                    scale = [float(x) for value in _gpmf_values(payload, kind, size, repeat, at) for x in value]
                    scale = [x or 1.0 for x in scale] or [1.0]
                elif item == b"TYPE":
                    complex_type = _gpmf_values(payload, kind, size, repeat, at)[0]
                elif item == b"GPSU":
                    utc = _gpsu(_gpmf_values(payload, kind, size, repeat, at)[0])
                elif item == b"GPSF":
                    values = _gpmf_values(payload, kind, size, repeat, at)
                    fix = values[0][0] if values else None
                elif item in (b"GPS5", b"GPS9"):
                    samples = _gpmf_values(payload, kind, size, repeat, at, complex_type)
                    points += _gps_samples(item, samples, scale, utc or sample_at, sample_seconds, fix)
    return points


def _gps_samples(item: bytes, samples: list, scale: list[float], first_at: datetime | None,
                 sample_seconds: float, fix: int | None) -> list[Point]:
    points: list[Point] = []
    if item == b"GPS5" and (fix == 0 or first_at is None):
        return []
    for i, raw in enumerate(samples):
        if len(raw) < 5:
            continue
        values = [v / (scale[j] if j < len(scale) else scale[-1]) for j, v in enumerate(raw)]
        lat, lon, speed = values[0], values[1], values[3] * 3.6
        if item == b"GPS9":
            if len(values) < 9 or raw[8] == 0:
                continue
            at = GPS_EPOCH_2000 + timedelta(days=values[5], seconds=values[6])
        else:
            at = first_at + timedelta(seconds=sample_seconds * i / max(1, len(samples)))  # type: ignore[operator]
        if -90 <= lat <= 90 and -180 <= lon <= 180 and (lat, lon) != (0, 0):
            points.append((at, lat, lon, speed))
    return points


# --- Google CAMM -----------------------------------------------------------------------------------------------------

CAMM_HEAD = struct.Struct("<HH")
CAMM_POSITION = struct.Struct("<3d")  # type 5: latitude, longitude, altitude
CAMM_GPS = struct.Struct("<di2d7f")  # type 6, packed: GPS time, fix type, lat, lon, alt, accuracies, velocities …
GPS_EPOCH = datetime(1980, 1, 6, tzinfo=UTC)
GPS_LEAP_SECONDS = 18  # GPS time runs ahead of UTC by 18 s since 1 January 2017 (no leap second added since)


def parse_camm(payload: bytes, sample_at: datetime | None) -> Point | None:
    """One CAMM packet: type 6 (a GPS fix with its own time, none without a fix) or type 5 (a position at the
    sample's time in the recording); other types (gyroscope, accelerometer …) are not GPS."""
    if len(payload) < CAMM_HEAD.size:
        return None
    _reserved, kind = CAMM_HEAD.unpack_from(payload)
    if kind == 6 and len(payload) >= CAMM_HEAD.size + CAMM_GPS.size:
        gps_time, fix_type, lat, lon, _alt, _hacc, _vacc, east, north, _up, _sacc = \
            CAMM_GPS.unpack_from(payload, CAMM_HEAD.size)
        if fix_type == 0 or not math.isfinite(gps_time):
            return None
        at = GPS_EPOCH + timedelta(seconds=gps_time - GPS_LEAP_SECONDS)
        speed: float | None = math.hypot(east, north) * 3.6
    elif kind == 5 and len(payload) >= CAMM_HEAD.size + CAMM_POSITION.size and sample_at is not None:
        lat, lon, _alt = CAMM_POSITION.unpack_from(payload, CAMM_HEAD.size)
        at, speed = sample_at, None
    else:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return at, lat, lon, speed


def metadata_track(container, path: Path, started_at: datetime | None) -> tuple[str | None, list[Point]]:  # noqa: ANN001
    """GoPro GPMF or Google CAMM samples of an open PyAV ``container`` (its tracks told apart by their sample
    entries), as a track; ``(None, [])`` when it carries neither."""
    entries = sample_entries(path)
    wanted = {s.index: entries[s.index] for s in container.streams
              if s.type == "data" and s.index < len(entries) and entries[s.index] in (b"gpmd", b"camm")}
    if not wanted:
        return None, []
    stream = next(s for s in container.streams if s.index == min(wanted))
    kind = wanted[stream.index]
    points: list[Point] = []
    for packet in container.demux(stream):
        if not packet.size:
            continue
        position = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else 0.0
        at = started_at + timedelta(seconds=position) if started_at is not None else None
        if kind == b"gpmd":
            seconds = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else 1.0
            points += parse_gpmf(bytes(packet), at, seconds)
        else:
            point = parse_camm(bytes(packet), at)
            if point is not None:
                points.append(point)
        if len(points) > MAX_POINTS:
            raise TrackError(f"more than {MAX_POINTS} points")
    source = "mp4 GPMF (GoPro)" if kind == b"gpmd" else "mp4 CAMM (Google)"
    return (source, points) if points else (None, [])


def embedded_track(path: Path, started_at: datetime | None) -> tuple[str | None, list[Point]]:
    """GPS carried inside a video file: NMEA sentences in its text tracks, else a GoPro GPMF or Google CAMM metadata
    track, else Novatek ``freeGPS`` boxes, else its ISO 6709 location (a point at ``started_at``).
    ``(source, points)``; ``(None, [])`` when it carries none. Raises TrackError naming a bad sentence (a wrong
    checksum), never for a file that is not a video (that is the index's business)."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception:  # noqa: BLE001 - not a video: no track either
        return None, []
    with container:
        entries = sample_entries(path)
        texts = [s for s in container.streams if s.type in ("subtitle", "data")
                 and (s.codec_context is None or s.codec_context.name in TEXT_CODECS)
                 and (s.index >= len(entries) or entries[s.index] not in BINARY_ENTRIES)]
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
        source, points = metadata_track(container, path, started_at)
        if points:
            return source, points
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
    """Read the first readable side file into the recording's track; keep the files beside the original. Every side
    file is read before any is moved, so a bad one (TrackError) leaves them all where they were."""
    count = 0
    for path, points in [(path, parse_track(path)) for path in side_files]:
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
