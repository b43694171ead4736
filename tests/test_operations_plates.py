"""Licence plates: Kazakhstan formats and normalisation, fuzzy matching, reading plates from pictures (rapidocr),
and the simulator's road and people scenes that show them to the rest of the system."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from kuzet.domain.plates import REGIONS, matches_prefix, normalise, plate_distance, search, similar
from kuzet.services.operations import anpr
from kuzet.services.simulator import clips
from kuzet.services.simulator.clips import MAIN_720P, SUB_360P, ClipSpec, ensure_clip, scene_clips, scene_spec
from kuzet.services.simulator.rtsp import SimThread, build_cameras
from kuzet.services.simulator.scenes import DEMO_PLATE, PASS_SECONDS, RoadScene

needs_anpr = pytest.mark.skipif(not anpr.available(), reason="the 'anpr' extra (rapidocr) is not installed")
ROAD_PLATE = "800SOB05"  # digits and letters that OCR confuses (0/O, 8/B, 5/S)


# --- formats and normalisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "plate", "fmt", "region"), [
    ("123ABC02", "123ABC02", "individual", "02"),
    ("123 abc 02", "123ABC02", "individual", "02"),
    ("123-ABC-02", "123ABC02", "individual", "02"),
    ("KZ 123 ABC 02", "123ABC02", "individual", "02"),  # the flag strip read along
    ("123 ABC 02 KZ", "123ABC02", "individual", "02"),
    ("123АВС02", "123ABC02", "individual", "02"),  # Cyrillic А, В, С
    ("123 вос 11", "123BOC11", "individual", "11"),  # lower-case Cyrillic
    ("777 ЕКМ 17", "777EKM17", "individual", "17"),
    ("I23A8C0Z", "123ABC02", "individual", "02"),  # I→1, 8→B, 0 stays, Z→2: fixed by position
    ("8O0 5OB 05", "800SOB05", "individual", "05"),
    ("123 ABC I02", "123ABC02", "individual", "02"),  # the bar before the region box read as I
    ("505 KIS 20", "505KIS20", "individual", "20"),
    ("123AB02", "123AB02", "legal_entity", "02"),
    ("KZ 001 AA 01", "001AA01", "legal_entity", "01"),
    ("A123BCD", "A123BCD", "individual_1993", "02"),
    ("z 777 abc", "Z777ABC", "individual_1993", "01"),
    ("M 1Z3 ABC", "M123ABC", "individual_1993", "09"),
    ("A 001 AA", "A001AA", "legal_entity_1993", "02"),
    ("O 123 ABC", "O123ABC", "individual_1993", None),  # a 1993 letter now split between two regions
])
def test_normalise_accepts_formats_and_noise(text: str, plate: str, fmt: str, region: str | None) -> None:
    found = normalise(text)
    assert found is not None, text
    assert (found.plate, found.format, found.region) == (plate, fmt, region)


@pytest.mark.parametrize("text", [
    "123ABC99", "123ABC00", "123ABC21",  # no such region code
    "G123ABC", "Q 123 ABC",  # no such 1993 region letter
    "", "hello world", "1234567", "ABCDEFGH", "123 ABCD 02", "12 ABC 02", "1234 AB 02", "#%$!",
    "KUZET SIM frame 12", "00:00:02.000", "00:00:00.120",  # the simulator's burnt-in counter
])
def test_normalise_rejects_what_is_not_a_plate(text: str) -> None:
    assert normalise(text) is None


def test_regions_and_display() -> None:
    assert sorted(REGIONS) == [f"{n:02d}" for n in range(1, 21)]
    almaty = normalise("123ABC02")
    assert almaty is not None and almaty.region_names == {"en": "Almaty", "ru": "Алматы", "kk": "Алматы"}
    assert almaty.display == "123 ABC 02"
    ulytau = normalise("123AB20")
    assert ulytau is not None and ulytau.region_names["kk"] == "Ұлытау облысы" and ulytau.display == "123 AB 20"
    old = normalise("O123ABC")
    assert old is not None and old.region_names["en"] == "Akmola Region / North Kazakhstan Region"
    assert old.display == "O 123 ABC"


def test_fuzzy_distance_treats_ocr_confusions_as_cheap() -> None:
    assert plate_distance("123ABC02", "123 abc 02") == 0
    assert plate_distance("123ABC02", "123A8C02") == pytest.approx(0.25)  # B read as 8
    assert plate_distance("123ABC02", "123ABD02") == 1  # a real difference
    assert plate_distance("123ABC02", "123ABC2") == 1  # a character lost
    assert plate_distance("123ABC02", "1Z3A8C0Z") == pytest.approx(0.75)
    assert similar("123A8C02", "123ABC02")
    assert similar("124ABC02", "123ABC02", max_edits=1)
    assert not similar("124ABD02", "123ABC02", max_edits=1)
    hot = ["123ABC02", "123ABC03", "999XYZ01", "128ABC02", "123BBC02", "A123BCD"]
    assert search("123A8C02", hot) == [("123ABC02", 0.25)]
    assert [p for p, _ in search("123ABC02", hot, max_edits=1)] == ["123ABC02", "123ABC03", "123BBC02", "128ABC02"]
    assert search("123ABC02", []) == []


def test_prefix_matching() -> None:
    assert matches_prefix("123", "123ABC02")
    assert matches_prefix("123 a8", "123ABC02")  # typed with a confusion
    assert matches_prefix("12З АВ", "123ABC02")  # Cyrillic
    assert not matches_prefix("124", "123ABC02")
    assert not matches_prefix("123ABC021", "123ABC02")


# --- reading pictures ------------------------------------------------------------------------------------------


def _dejavu(bold: bool = True) -> str:
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / ("DejaVuSans-Bold.ttf" if bold else
                                                                      "DejaVuSans.ttf"))


def _plate_picture(number: str, region: str, plate_width: int = 210) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 1280x720 street-like picture with a plate of ``plate_width`` px and a shop sign beside it (drawn here, not
    with the simulator's renderer)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(3)
    picture = np.full((720, 1280, 3), (70, 80, 90), np.uint8)
    picture += rng.integers(0, 25, picture.shape, dtype=np.uint8)
    cv2.rectangle(picture, (300, 250), (900, 600), (40, 40, 120), -1)  # a dark red car body
    scale = 4  # draw large, then shrink as a camera would see it
    w, h = plate_width * scale, round(plate_width * 112 / 520) * scale
    plate = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(plate)
    draw.rectangle([2, 2, w - 3, h - 3], outline="black", width=3 * scale)
    draw.rectangle([8 * scale, 6 * scale, 30 * scale, 22 * scale], fill=(0, 175, 202))
    draw.text((19 * scale, h - 10 * scale), "KZ", font=ImageFont.truetype(_dejavu(), 9 * scale), fill="black",
              anchor="mm")
    font = ImageFont.truetype(_dejavu(), int(h * 0.62))
    bar = int(w * 0.80)
    draw.text(((36 * scale + bar) // 2, h // 2), number, font=font, fill="black", anchor="mm")
    draw.line([bar, 0, bar, h], fill="black", width=2 * scale)
    draw.text(((bar + w) // 2, h // 2), region, font=font, fill="black", anchor="mm")
    small = cv2.resize(cv2.cvtColor(np.asarray(plate), cv2.COLOR_RGB2BGR), (w // scale, h // scale),
                       interpolation=cv2.INTER_AREA)
    x, y = 500, 480
    picture[y:y + small.shape[0], x:x + small.shape[1]] = small
    sign = Image.new("RGB", (360, 70), (235, 235, 225))
    ImageDraw.Draw(sign).text((180, 35), "DARIKHANA 24", font=ImageFont.truetype(_dejavu(), 40), fill=(20, 60, 20),
                              anchor="mm")
    picture[60:130, 820:1180] = cv2.cvtColor(np.asarray(sign), cv2.COLOR_RGB2BGR)
    return picture, (x, y, small.shape[1], small.shape[0])


@pytest.fixture(scope="module")
def reader() -> anpr.PlateReader:
    if not anpr.available():
        pytest.skip("the 'anpr' extra (rapidocr) is not installed")
    return anpr.PlateReader()


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@needs_anpr
@pytest.mark.parametrize(("number", "region", "expected"), [
    ("123 ABC", "02", "123ABC02"),
    ("505 KIS", "20", "505KIS20"),
    ("777 AB", "17", "777AB17"),
])
def test_reader_reads_a_plate_in_a_street_picture(reader: anpr.PlateReader, number: str, region: str,
                                                  expected: str) -> None:
    picture, where = _plate_picture(number, region)
    readings = reader.read(picture)
    assert [r.plate for r in readings] == [expected]
    (reading,) = readings
    assert reading.region == region and 0.6 <= reading.score <= 1
    assert _overlaps(reading.box, where)
    x, y, w, h = reading.box
    assert w >= where[2] * 0.6 and h <= where[3] * 2


@needs_anpr
def test_reader_finds_nothing_where_there_is_no_plate(reader: anpr.PlateReader) -> None:
    picture, _ = _plate_picture("123 ABC", "02")
    picture[470:560, 480:760] = (40, 40, 120)  # the plate covered
    assert reader.read(picture) == []
    assert reader.read(np.zeros((360, 640, 3), np.uint8)) == []
    with pytest.raises(ValueError):
        reader.read(np.zeros((360, 640), np.uint8))


@needs_anpr
def test_reader_downloads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The models come from the rapidocr wheel: creating a reader and reading work with the network cut off."""
    from rapidocr.utils import download_file

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(download_file.DownloadFile, "run", classmethod(refuse))
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = anpr.PlateReader()
    picture, _ = _plate_picture("123 ABC", "02")
    assert [r.plate for r in fresh.read(picture)] == ["123ABC02"]


def test_reader_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anpr, "available", lambda: False)
    with pytest.raises(anpr.AnprUnavailable, match=r"kuzet\[anpr\]"):
        anpr.PlateReader()


@needs_anpr
def test_reader_is_safe_to_share_between_threads(reader: anpr.PlateReader) -> None:
    picture, _ = _plate_picture("505 KIS", "20")
    results: list[list[str]] = []

    def work() -> None:
        results.append([r.plate for r in reader.read(picture)])

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [["505KIS20"]] * 3


# --- simulator scenes ------------------------------------------------------------------------------------------


def _probe(path: Path) -> dict:
    import json

    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height,avg_frame_rate,codec_name",
                          "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    stream = data["streams"][0]
    return {"size": (stream["width"], stream["height"]), "fps": stream["avg_frame_rate"],
            "codec": stream["codec_name"], "duration": float(data["format"]["duration"])}


def _frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    import av

    out = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                out[i] = frame.to_ndarray(format="bgr24")
            if i >= max(indices):
                break
    return out


def test_scene_names() -> None:
    assert clips.parse_scene("road:123 abc 02") == "road:123ABC02"
    assert clips.parse_scene("People") == "people"
    for bad in ("road:hello", "beach", "people:3"):
        with pytest.raises(ValueError):
            clips.parse_scene(bad)
    spec = scene_spec(MAIN_720P, "road:123ABC02")
    assert spec.filename.startswith("road-123ABC02-") and spec.seconds == 12
    assert MAIN_720P.filename == "main-1280x720-25fps-2000k-12s.mp4"  # the default clips keep their cache names

    from kuzet.cli.recording import parse_scene_options

    assert parse_scene_options(["1=road:123 ABC 02", "3=people"], 4) == {1: "road:123ABC02", 3: "people"}
    for bad in (["5=people"], ["x=people"], ["1=sea"]):
        with pytest.raises(ValueError):
            parse_scene_options(bad, 4)


@pytest.fixture(scope="module")
def road_clips() -> tuple[Path, Path]:
    return scene_clips(f"road:{ROAD_PLATE}", MAIN_720P, SUB_360P)


@pytest.mark.media
@needs_anpr
def test_road_clip_shows_the_plate(road_clips: tuple[Path, Path], reader: anpr.PlateReader) -> None:
    main, sub = road_clips
    assert _probe(main)["size"] == (1280, 720) and _probe(sub)["size"] == (640, 360)
    assert _probe(main)["duration"] == pytest.approx(12, abs=0.1) and _probe(main)["fps"] == "25/1"
    waiting = round(2.4 * 25)  # the first car waits at the stop line from 1.9 s to 3 s of its pass
    assert 2.4 < PASS_SECONDS
    frame = _frames(main, {waiting})[waiting]
    readings = reader.read(frame)
    assert [r.plate for r in readings] == [ROAD_PLATE] and readings[0].region == "05"
    expected = normalise(ROAD_PLATE)
    assert expected is not None
    assert _overlaps(readings[0].box, RoadScene(expected, 1280, 720, 25).plate_box(waiting))
    small = _frames(sub, {waiting})[waiting]
    assert ROAD_PLATE in [r.plate for r in reader.read(small)]  # the sub stream shows it too
    empty = _frames(main, {0})[0]  # the car is still a speck on the horizon
    assert reader.read(empty) == []


@pytest.mark.media
def test_people_scene(media_dir: Path | None, caplog: pytest.LogCaptureFixture,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    if media_dir is not None:
        monkeypatch.setenv("KUZET_MEDIA_DIR", str(media_dir))
        main = ensure_clip(replace(scene_spec(MAIN_720P, "people"), seconds=3))
        sub = ensure_clip(replace(scene_spec(SUB_360P, "people"), seconds=3))
        assert "people" in main.name and "people" in sub.name
        assert _probe(main)["size"] == (1280, 720) and _probe(sub)["size"] == (640, 360)
        assert _probe(main)["fps"] == "25/1" and _probe(main)["duration"] == pytest.approx(3, abs=0.1)
        frame = _frames(main, {40})[40]
        assert frame[:, 200:1080].std() > 20  # real footage in the middle, black pillars at the sides
        assert frame[100:700, :120].max() < 40 and frame[100:700, 1180:].max() < 40
    # Without the footage: the test picture, and a warning.
    monkeypatch.setattr(clips, "media_dir", lambda: None)
    tiny = ClipSpec("fallback", 160, 90, bitrate_kbps=100, seconds=1)
    with caplog.at_level(logging.WARNING, logger="kuzet.sim"):
        path = ensure_clip(replace(scene_spec(tiny, "people"), seconds=1))
    assert path.name == replace(tiny, seconds=12).filename and "people" not in path.name
    assert "vtest_h264.mp4" in caplog.text


@pytest.fixture
def scene_sim() -> Iterator[SimThread]:
    """Camera 1 shows the demo's road scene, camera 2 the recording tests' default picture."""
    default = ClipSpec("test-main", 640, 360, bitrate_kbps=800, seconds=12)
    default_sub = ClipSpec("test-sub", 320, 180, bitrate_kbps=200, seconds=12)
    road = scene_clips(f"road:{DEMO_PLATE}", MAIN_720P, SUB_360P)
    cams = build_cameras(2, ensure_clip(default), ensure_clip(default_sub), scenes={1: road})
    assert cams[0].streams["main"][0].width == 1280 and cams[1].streams["main"][0].width == 640
    sim = SimThread(cams)
    yield sim
    sim.close()


def _live_frames(url: str, seconds: float, every: int) -> list[np.ndarray]:
    """Every ``every``-th picture of ``seconds`` of a live RTSP stream (25 fps), decoded with PyAV."""
    import av

    frames = []
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=10) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= seconds * 25:
                break
            if i % every == 0:
                frames.append(frame.to_ndarray(format="bgr24"))
    return frames


@pytest.mark.media
@needs_anpr
def test_simulated_road_camera_shows_its_plate(scene_sim: SimThread, reader: anpr.PlateReader) -> None:
    road = _live_frames(scene_sim.server.url(1), PASS_SECONDS + 0.5, every=5)  # a whole pass: the car waits in it
    assert road and road[0].shape == (720, 1280, 3)
    seen = {r.plate for frame in road for r in reader.read(frame)}
    assert seen == {DEMO_PLATE}
    other = _live_frames(scene_sim.server.url(2), 1.0, every=10)
    assert other and other[0].shape == (360, 640, 3)
    assert not any(reader.read(frame) for frame in other)
    sub = _live_frames(scene_sim.server.url(1, "sub"), 0.5, every=10)
    assert sub and sub[0].shape == (360, 640, 3)
