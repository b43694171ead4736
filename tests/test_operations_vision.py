"""The per-camera analysis pipeline: fMP4 fragments → decoded frames → motion, objects, plates → observations.

Real FFmpeg, PyAV, OpenCV, norfair and onnxruntime throughout. Clips are generated with FFmpeg in the test (a static
noisy scene with a box crossing it at a known time); the real CCTV footage (``vtest_h264.mp4``: pedestrians on a
campus path, 768x576 10 fps) is used where present (``media_dir``) and those tests skip without it.
"""

from __future__ import annotations

import struct
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from kuzet.bench.motion import fmp4_fragments, run_motion_benchmark, wall_fragments
from kuzet.services.operations.decode import DecodeError, FragmentDecoder, luma
from kuzet.services.operations.motion import MotionDetector, MotionIntervals, Zone
from kuzet.services.operations.objects import (
    Detection,
    DetectorUnavailable,
    HogPeopleDetector,
    OnnxDetector,
    make_detector,
)
from kuzet.services.operations.observations import Observation
from kuzet.services.operations.pipeline import AnalysisConfig, CameraPipeline, regions_of
from kuzet.services.operations.tracking import ObjectTracker
from kuzet.services.recording.ffmpeg import ffmpeg_binary
from kuzet.services.recording.hub import Fragment
from kuzet.services.recording.mp4 import Mp4Error, codec_config, fragment_samples, parse_moof

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BOX_FROM, BOX_TO = 3.0, 6.0  # the synthetic clip's box crosses the picture between these seconds


def seconds(at: datetime) -> float:
    return (at - T0).total_seconds()


def is_jpeg(data: bytes | None) -> np.ndarray:
    assert data and data[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    return inter / (aw * ah + bw * bh - inter) if inter else 0.0


# --- clips ------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def synth_clip(clips: Path) -> Path:
    """10 s, 640x360, 25 fps H.264 with B-frames: a noisy static scene; a light 40x90 box crosses it from 3 s to 6 s."""
    path = clips / "synth.mp4"
    subprocess.run([
        ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "color=c=0x505a64:s=640x360:r=25:d=10",
        "-f", "lavfi", "-i", "color=c=0xe0e0e0:s=40x90:r=25:d=10",
        "-filter_complex", f"[0][1]overlay=x='60+(t-{BOX_FROM})*150':y=140:enable='between(t,{BOX_FROM},{BOX_TO})',"
                           "noise=alls=6:allf=t",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "2", "-pix_fmt", "yuv420p", str(path),
    ], check=True, capture_output=True, timeout=120)
    return path


@pytest.fixture(scope="module")
def synth(synth_clip: Path) -> tuple[bytes, list[Fragment]]:
    init, parts = fmp4_fragments(synth_clip)
    return init, wall_fragments(init, parts, T0)


@pytest.fixture(scope="module")
def hevc(clips: Path) -> tuple[bytes, list[bytes]]:
    path = clips / "hevc.mp4"
    try:
        subprocess.run([ffmpeg_binary(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                        "-i", "testsrc2=s=320x240:r=25:d=2", "-c:v", "libx265", "-x265-params", "log-level=error",
                        "-tag:v", "hvc1", "-pix_fmt", "yuv420p", str(path)], check=True, capture_output=True,
                       timeout=120)
    except subprocess.CalledProcessError:
        pytest.skip("this ffmpeg has no libx265")
    return fmp4_fragments(path)


@pytest.fixture(scope="module")
def vtest(media_dir: Path | None) -> Path:
    if media_dir is None:
        pytest.skip("real CCTV footage (vtest_h264.mp4) not present; set KUZET_MEDIA_DIR")
    return media_dir / "vtest_h264.mp4"


@dataclass
class Footage:
    times: list[float]  # seconds of every analysed frame (5 fps)
    grey: list[np.ndarray]  # at half size (384x288), what the motion detector works on anyway
    colour: dict[float, np.ndarray]  # a few full-size BGR frames for the people detector


@pytest.fixture(scope="module")
def footage(vtest: Path) -> Footage:
    """The real footage decoded once, every other frame (5 fps)."""
    out = Footage([], [], {})
    with av.open(str(vtest)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k % 2:
                continue
            t = round(float(frame.pts * frame.time_base), 2)
            grey = luma(frame)  # as the pipeline sees it
            out.times.append(t)
            out.grey.append(cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA))
            if k % 100 == 50 or k == 400:
                out.colour[t] = frame.to_ndarray(format="bgr24")
    return out


# --- fMP4 samples and codec configuration -----------------------------------------------------------------------------

def test_fragment_samples_match_the_moof_and_lie_in_the_mdat(synth: tuple[bytes, list[Fragment]]) -> None:
    init, fragments = synth
    codec, extradata = codec_config(init)
    assert codec == "h264" and extradata[0] == 1  # avcC configurationVersion
    offsets = set()
    for fragment in fragments:
        info = parse_moof(fragment.data)
        samples = fragment_samples(fragment.data)
        assert len(samples) == info.samples
        assert sum(s.duration for s in samples) == info.duration
        assert samples[0].keyframe == info.keyframe
        assert all(not s.keyframe for s in samples[1:])  # one keyframe per fragment at most, first
        for a, b in zip(samples, samples[1:], strict=False):
            assert b.offset == a.offset + a.size  # contiguous in the mdat
        mdat_end = len(fragment.data)
        assert samples[-1].offset + samples[-1].size == mdat_end
        offsets |= {s.composition_offset for s in samples}
    assert sum(f.samples for f in fragments) == 250
    assert len(offsets) > 1  # B-frames: presentation order differs from decode order


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_fragment_samples_follow_tfhd_defaults() -> None:
    """A fragment written the other way (sizes, durations and flags from tfhd defaults), as some cameras' muxers do."""
    sync, non_sync = 0x02000000, 0x01010000
    tfhd = _box(b"tfhd", struct.pack(">I", 0x020000 | 0x08 | 0x10 | 0x20) + struct.pack(">IIII", 1, 3600, 100,
                                                                                         non_sync))
    tfdt = _box(b"tfdt", struct.pack(">II", 0, 90000))
    trun_body = struct.pack(">I", 0x01 | 0x04) + struct.pack(">I", 3)  # data offset, first sample flags, 3 samples
    trun_len = 8 + len(trun_body) + 8
    traf_len = 8 + len(tfhd) + len(tfdt) + trun_len
    moof_len = 8 + 16 + traf_len
    trun = _box(b"trun", trun_body + struct.pack(">iI", moof_len + 8, sync))
    moof = _box(b"moof", _box(b"mfhd", struct.pack(">II", 0, 1)) + _box(b"traf", tfhd + tfdt + trun))
    assert len(moof) == moof_len
    data = moof + _box(b"mdat", bytes(300))
    samples = fragment_samples(data)
    assert [(s.offset, s.size, s.duration, s.keyframe) for s in samples] == [
        (moof_len + 8, 100, 3600, True), (moof_len + 108, 100, 3600, False), (moof_len + 208, 100, 3600, False)]
    assert parse_moof(data).samples == 3
    with pytest.raises(Mp4Error):
        fragment_samples(moof + _box(b"mdat", bytes(250)))  # the last sample would lie outside the fragment
    with pytest.raises(Mp4Error):
        fragment_samples(b"\x00\x00\x00\x10garbage garbage!")


def test_hevc_init_gives_hvcc_and_decodes(hevc: tuple[bytes, list[bytes]]) -> None:
    init, parts = hevc
    codec, extradata = codec_config(init)
    assert codec == "hevc" and extradata[0] == 1  # hvcC configurationVersion
    decoder = FragmentDecoder(init)
    frames = [f for fragment in wall_fragments(init, parts, T0) for f in decoder.decode(fragment)]
    frames += decoder.flush()
    assert len(frames) == 50
    assert frames[0][1].width == 320 and luma(frames[0][1]).shape == (240, 320)


# --- decoding ---------------------------------------------------------------------------------------------------------

def test_decoder_gives_every_frame_at_its_wall_time(synth: tuple[bytes, list[Fragment]]) -> None:
    init, fragments = synth
    decoder = FragmentDecoder(init)
    frames = [f for fragment in fragments for f in decoder.decode(fragment)] + decoder.flush()
    times = [seconds(at) for at, _ in frames]
    assert len(frames) == 250
    assert times == pytest.approx([k * 0.04 for k in range(250)], abs=1e-6)  # presentation order, 25 fps from T0
    at, frame = frames[100]
    grey = luma(frame)
    assert grey.shape == (360, 640) and grey.dtype == np.uint8
    assert np.array_equal(grey, frame.to_ndarray()[:360])  # plane 0 (Y) as it is, no conversion
    full_range = frame.to_ndarray(format="gray").astype(np.float32)  # swscale's grey: Y stretched to 0..255
    assert np.corrcoef(grey.ravel(), full_range.ravel())[0, 1] > 0.99
    wanted = FragmentDecoder(init)
    picked = [seconds(t) for fragment in fragments for t, _ in wanted.decode(fragment, lambda t: t.second % 2 == 0)]
    assert picked and all(int(t) % 2 == 0 for t in picked)


def test_decoder_reports_unreadable_data() -> None:
    with pytest.raises(DecodeError):
        FragmentDecoder(b"\x00\x00\x00\x08free")
    with pytest.raises(DecodeError):
        FragmentDecoder(b"not an mp4 at all")


# --- motion -----------------------------------------------------------------------------------------------------------

# The paved path, the road and the car park of the footage, with room above them for the people walking there.
PATH_MASK = [(0, 0.06), (0.55, 0.10), (0.75, 0.0), (1, 0), (1, 0.90), (0.85, 0.86), (0.60, 0.74), (0.45, 0.64),
             (0.30, 0.58), (0, 0.54)]


def run_motion(footage: Footage, zones: list[Zone] | None = None) -> tuple[list, list[Observation]]:
    detector = MotionDetector(zones=zones or [])
    observations: list[Observation] = []
    intervals = MotionIntervals(1, observations.append)
    results = []
    for t, grey in zip(footage.times, footage.grey, strict=True):
        result = detector.apply(grey, t)
        intervals.feed(T0 + timedelta(seconds=t), result)
        results.append(result)
    intervals.close(T0 + timedelta(seconds=footage.times[-1]))
    return results, observations


def covered(observations: list[Observation], t: float) -> bool:
    return any(o.phase == "end" and seconds(o.start) <= t <= seconds(o.end) for o in observations)


def test_motion_covers_the_people_walking_in_real_footage(footage: Footage) -> None:
    results, observations = run_motion(footage)
    ends = [o for o in observations if o.phase == "end"]
    assert ends and sum(1 for o in observations if o.phase == "start") == len(ends)
    # Ground truth: people found by the HOG people detector on whole frames, every 10 s, independently of motion.
    hog = HogPeopleDetector()
    people = 0
    overlapped = 0
    for t, image in footage.colour.items():
        height, width = image.shape[:2]
        moving = regions_of(results[footage.times.index(t)], width, height)
        for person in hog.detect(image):
            if person.score < 0.75 or person.box[3] > 200:  # confident, person-sized
                continue
            people += 1
            assert covered(observations, t), f"person at {t} s outside every motion interval"
            overlapped += any(iou(person.box, region) > 0 or _inside(person.box, region) for region in moving)
    assert people >= 12
    assert overlapped >= 0.75 * people  # a person standing still is not motion; nearly everyone here walks
    # Updates come at least every second while an interval lasts.
    for key in {o.key for o in observations}:
        times = [_at(o) for o in observations if o.key == key]
        assert all(b - a <= 1.05 for a, b in zip(times, times[1:], strict=False))


def _at(obs: Observation) -> float:
    return seconds(datetime.fromisoformat(obs.details["at"]))


def _inside(box: tuple, region: tuple) -> bool:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    return region[0] <= cx <= region[0] + region[2] and region[1] <= cy <= region[1] + region[3]


def test_a_mask_over_the_path_removes_the_people_walking_on_it(footage: Footage) -> None:
    results, observations = run_motion(footage, [Zone("path", "mask", tuple(PATH_MASK))])
    starts = [seconds(o.start) for o in observations if o.phase == "start"]
    # For the first 50 s everybody walks on the path or the road: nothing is left.
    assert all(t >= 50 for t in starts), starts
    assert not any(r.motion for t, r in zip(footage.times, results, strict=True) if t < 50)
    # Then a woman crosses the lawn in front (hand-checked, 51-58 s): still found outside the mask.
    assert covered(observations, 52.0) and covered(observations, 57.0)
    # Zones: a zone over the lawn names her; motion outside every zone does not count.
    lawn = Zone("lawn", "zone", ((0, 0.6), (1, 0.95), (1, 1), (0, 1)))
    zoned, zone_obs = run_motion(footage, [lawn])
    assert not any(r.motion for t, r in zip(footage.times, zoned, strict=True) if t < 50)
    assert any(o.zones == ["lawn"] for o in zone_obs if o.phase == "end")


def _texture(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((360, 640)) * 200 + 20).astype(np.uint8), (7, 7), 0)


def test_a_whole_picture_brightness_change_is_not_motion() -> None:
    scene = _texture()
    detector = MotionDetector()
    observations: list[Observation] = []
    intervals = MotionIntervals(1, observations.append)
    t = 0.0
    noise = np.random.default_rng(2)

    def feed(image: np.ndarray) -> bool:
        nonlocal t
        jitter = noise.integers(-3, 4, image.shape, dtype=np.int16)
        frame = np.clip(image.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
        result = detector.apply(frame, t)
        intervals.feed(T0 + timedelta(seconds=t), result)
        t += 0.2
        return result.motion

    assert not any(feed(scene) for _ in range(10))
    brighter = cv2.convertScaleAbs(scene, alpha=1.0, beta=60)  # auto exposure / lights on
    assert not any(feed(brighter) for _ in range(15))
    ir = cv2.convertScaleAbs(scene, alpha=0.5, beta=10)  # night mode: darker, less contrast
    assert not any(feed(ir) for _ in range(15))
    assert observations == []
    # Not blind afterwards: something moving in the re-learnt scene is found.
    moved = []
    for k in range(10):
        image = ir.copy()
        cv2.rectangle(image, (100 + 30 * k, 120), (140 + 30 * k, 210), 250, cv2.FILLED)
        moved.append(feed(image))
    assert sum(moved) >= 8
    assert [o.phase for o in observations][:1] == ["start"]


# --- objects ----------------------------------------------------------------------------------------------------------

# People in the footage's frame at 40.0 s, boxed by hand (x, y, w, h).
PEOPLE_AT_40 = [(272, 198, 30, 90), (588, 138, 32, 72), (690, 298, 52, 116)]


def test_hog_finds_the_people_and_nothing_in_an_empty_picture(footage: Footage) -> None:
    image = footage.colour[40.0]
    hog = HogPeopleDetector()
    # On the motion regions of that frame (as the pipeline runs it)...
    detector = MotionDetector()
    result = None
    for t, grey in zip(footage.times, footage.grey, strict=True):
        if 30 <= t <= 40:
            result = detector.apply(grey, t)
    assert result is not None and result.motion
    found = hog.detect(image, regions_of(result, image.shape[1], image.shape[0]))
    assert all(d.label == "person" and 0 < d.score <= 1 for d in found)
    for person in PEOPLE_AT_40:
        assert any(iou(person, d.box) >= 0.3 for d in found), (person, found)
    assert len(found) <= len(PEOPLE_AT_40) + 1
    # ...and on an empty scene: nothing, with or without regions.
    empty = cv2.cvtColor(_texture(3), cv2.COLOR_GRAY2BGR)
    empty[200:] = (40, 120, 60)  # a lawn
    assert hog.detect(empty) == []
    assert hog.detect(empty, [(300, 150, 40, 100)]) == []


def _onnx_model(path: Path, output: np.ndarray, size: int = 320) -> Path:
    """A tiny ONNX graph: input images [1, 3, size, size] → output0 = the given tensor (+ 0 x the mean pixel)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = numpy_helper.from_array(output.astype(np.float32), "boxes")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["boxes", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "yolo-shaped",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        [const, numpy_helper.from_array(np.array(0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_onnx_detector_reads_yolov8_and_yolov5_outputs(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    # A 640x480 picture letterboxed into 320x320: scale 0.5, 40 px of padding above and below.
    person, car = (100, 120, 60, 160), (400, 300, 160, 80)

    def model_box(box: tuple) -> list[float]:
        x, y, w, h = box
        return [(x + w / 2) * 0.5, (y + h / 2) * 0.5 + 40, w * 0.5, h * 0.5]

    v8 = np.zeros((1, 84, 4), np.float32)
    for column, (box, cls, score) in enumerate([(person, 0, 0.9), (car, 2, 0.8), ((10, 10, 50, 50), 16, 0.95),
                                                ((300, 100, 40, 40), 0, 0.1)]):  # a dog (not kept), a faint person
        v8[0, :4, column] = model_box(box)
        v8[0, 4 + cls, column] = score
    v8[0, :4, 3] = model_box((300, 100, 40, 40))
    image = np.zeros((480, 640, 3), np.uint8)
    detector = OnnxDetector(_onnx_model(tmp_path / "v8.onnx", v8), None)
    assert (detector.input_width, detector.input_height) == (320, 320)
    found = sorted(detector.detect(image), key=lambda d: d.label, reverse=True)
    assert [(d.label, d.score) for d in found] == [("person", 0.9), ("car", 0.8)]
    assert all(abs(a - b) <= 1 for a, b in zip(found[0].box, person, strict=True))
    assert all(abs(a - b) <= 1 for a, b in zip(found[1].box, car, strict=True))
    # Only objects on motion regions when regions are given.
    assert [d.label for d in detector.detect(image, [(90, 100, 50, 50)])] == ["person"]

    v5 = np.zeros((1, 3, 85), np.float32)
    v5[0, 0, :4], v5[0, 0, 4], v5[0, 0, 5 + 0] = model_box(person), 0.95, 0.9  # objectness x class
    v5[0, 1, :4], v5[0, 1, 4], v5[0, 1, 5 + 2] = model_box(car), 0.2, 0.9  # too faint overall
    found = OnnxDetector(_onnx_model(tmp_path / "v5.onnx", v5), None).detect(image)
    assert [(d.label, round(d.score, 3)) for d in found] == [("person", 0.855)]
    assert all(abs(a - b) <= 1 for a, b in zip(found[0].box, person, strict=True))


def test_detector_errors_name_what_is_missing(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(DetectorUnavailable, match="nowhere.onnx"):
        OnnxDetector(tmp_path / "nowhere.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(DetectorUnavailable, match="bad.onnx"):
        OnnxDetector(bad)
    with pytest.raises(DetectorUnavailable, match="onnx_model"):
        make_detector("onnx", AnalysisConfig())
    assert isinstance(make_detector("hog"), HogPeopleDetector)
    with pytest.raises(ValueError):
        make_detector("magic")


# --- tracking ---------------------------------------------------------------------------------------------------------

def test_an_object_crossing_the_picture_is_one_event_with_its_best_snapshot() -> None:
    observations: list[Observation] = []
    tracker = ObjectTracker(3, observations.append, rate=2.0)
    background = cv2.cvtColor(_texture(4), cv2.COLOR_GRAY2BGR)
    best = None
    for n in range(68):  # analysed frames at 4 fps; a detection round on every other one (2 a second)
        at = T0 + timedelta(seconds=n * 0.25)
        k = n // 2
        if n % 2 == 0 and k < 24:  # the object crosses left to right for 12 s
            x = 10 + 25 * k + (k % 3) * 3  # jitter, as a detector's boxes have
            frame = background.copy()
            cv2.rectangle(frame, (x, 140), (x + 40, 240), (20, 20, 200), cv2.FILLED)
            detections = []
            if k not in (9, 10):  # missed twice in a row (occlusion) and found again
                score = 0.6 + 0.3 * (k == 13) + 0.01 * (k % 5)
                detections = [Detection("person", score, (x, 140, 40, 100))]
                if best is None or score > best[0]:
                    best = (score, (x, 140, 40, 100))
            tracker.update(at, detections, frame)
        elif n % 2 == 0 and tracker.active:  # gone: rounds go on while something is tracked, without detecting
            tracker.update(at, [], None)
        tracker.tick(at)
    phases = [o.phase for o in observations]
    assert phases[0] == "start" and phases[-1] == "end" and phases.count("start") == phases.count("end") == 1
    assert len({o.key for o in observations}) == 1
    end = observations[-1]
    assert end.label == "person" and seconds(end.start) == 0 and seconds(end.end) == 11.5
    assert end.score == pytest.approx(best[0])
    x, y, w, h = best[1]
    assert end.box == pytest.approx((x / 640, y / 360, w / 640, h / 360), abs=1e-3)
    snapshot = is_jpeg(end.snapshot)
    assert snapshot.shape == (360, 640, 3)
    assert snapshot[190, x + 20, 2] > 150 and snapshot[190, x + 20, 0] < 80  # the object, where the best box is
    times = [_at(o) for o in observations]
    assert all(b - a <= 1.0 + 1e-6 for a, b in zip(times, times[1:-1], strict=False))


# --- the pipeline -----------------------------------------------------------------------------------------------------

def test_pipeline_reports_motion_at_the_right_wall_times(synth: tuple[bytes, list[Fragment]],
                                                         hevc: tuple[bytes, list[bytes]]) -> None:
    init, fragments = synth
    observations: list[Observation] = []
    pipeline = CameraPipeline(7, AnalysisConfig(), observations.append)
    for fragment in fragments:
        pipeline.process(init, fragment)
    assert pipeline.stats["analysed"] == 50  # 5 of 25 fps, by wall time
    motion = [o for o in observations if o.kind == "motion"]
    assert [o.phase for o in motion][0] == "start" and motion[-1].phase == "end"
    start, end = motion[0], motion[-1]
    assert {o.key for o in motion} == {start.key} and start.camera_id == 7
    assert seconds(start.start) == pytest.approx(BOX_FROM, abs=0.21)
    assert seconds(end.end) == pytest.approx(BOX_TO, abs=0.21)
    x, y, w, h = end.box
    assert y == pytest.approx(140 / 360, abs=0.03) and x < 0.15 and x + w > 0.8  # the box's path across
    picture = is_jpeg(start.snapshot)
    # The frame that confirmed the interval (its second moving frame, 3.2 s): the box at x = 60 + 0.2 * 150.
    assert picture.shape == (360, 640, 3) and picture[185, 95:125].mean() > 180 and picture[185, 40:80].mean() < 150
    updates = [_at(o) for o in motion if o.phase == "update"]
    assert updates and all(b - a <= 1.0 + 1e-6 for a, b in zip([_at(start)] + updates, updates, strict=False))
    # A new init segment (the camera restarted with another codec): a new decoder, frames keep coming.
    h265_init, parts = hevc
    before = pipeline.stats["analysed"]
    for fragment in wall_fragments(h265_init, parts, T0 + timedelta(seconds=20)):
        pipeline.process(h265_init, fragment)
    pipeline.close(T0 + timedelta(seconds=22))
    assert pipeline.stats["analysed"] >= before + 9  # 2 s of the new stream at 5 fps
    assert pipeline.stats["errors"] == 0


def test_pipeline_on_real_footage_with_people_tracked(vtest: Path) -> None:
    init, parts = fmp4_fragments(vtest)
    fragments = wall_fragments(init, parts, T0)[:70]  # the first ~20 s
    observations: list[Observation] = []
    pipeline = CameraPipeline(1, AnalysisConfig(objects=True), observations.append)
    assert isinstance(pipeline.detector, HogPeopleDetector)
    for fragment in fragments:
        pipeline.process(init, fragment)
    last = fragments[-1].start + timedelta(seconds=fragments[-1].duration)
    pipeline.close(last)
    media = sum(f.duration for f in fragments)
    assert pipeline.stats["analysed"] == pytest.approx(5 * media, abs=2)
    assert pipeline.stats["detections"] <= 2 * media + 1  # object_fps
    motion = [o for o in observations if o.kind == "motion"]
    assert motion[0].phase == "start" and motion[-1].phase == "end"
    assert 0 <= seconds(motion[0].start) <= 1.0  # people walk from the first frame
    assert all(T0 <= o.start <= last and (o.end is None or o.end <= last) for o in observations)
    # People: every track that started ended once, with its best sighting; 5-7 people are in view at a time.
    objects = [o for o in observations if o.kind == "object"]
    starts = {o.key for o in objects if o.phase == "start"}
    ends = [o for o in objects if o.phase == "end"]
    assert 5 <= len(starts) <= 25 and sorted(starts) == sorted(o.key for o in ends)
    for end in ends:
        assert end.label == "person" and end.score > 0.5 and T0 <= end.start <= end.end <= last
        x, y, w, h = end.box
        assert 0 <= x <= 1 and 0 <= y <= 1 and 0.08 < h < 0.5  # person-sized, in the picture
        assert is_jpeg(end.snapshot).shape == (576, 768, 3)
    # Someone walking through for a long while is one event, not one per detection.
    assert max((o.end - o.start).total_seconds() for o in ends) >= 10


def test_garbage_does_not_stop_the_pipeline(synth: tuple[bytes, list[Fragment]]) -> None:
    init, fragments = synth
    observations: list[Observation] = []
    pipeline = CameraPipeline(2, AnalysisConfig(), observations.append)
    pipeline.process(init, Fragment(b"\x17\x42garbage" * 50, True, T0, 0.25, 6))
    pipeline.process(init, Fragment(b"\x00\x00\x00\x08moof" + bytes(100), True, T0, 0.25, 6))
    # A real fragment whose coded data is overwritten with noise.
    noisy = bytearray(fragments[1].data)
    samples = fragment_samples(noisy)
    rng = np.random.default_rng(5)
    noisy[samples[0].offset:] = rng.integers(0, 256, len(noisy) - samples[0].offset, dtype=np.uint8).tobytes()
    pipeline.process(init, Fragment(bytes(noisy), True, fragments[1].start, 0.25, len(samples)))
    pipeline.process(b"garbage init", fragments[0])
    assert pipeline.stats["errors"] >= 3
    for fragment in fragments:  # and the camera is analysed as soon as good data comes
        pipeline.process(init, fragment)
    pipeline.close(T0 + timedelta(seconds=10))
    assert pipeline.stats["analysed"] >= 45
    assert any(o.kind == "motion" and o.phase == "end" for o in observations)


@dataclass
class Reading:
    text: str
    plate: str
    region: str | None
    score: float
    box: tuple[int, int, int, int]


class ScriptedPlates:
    """Stands in for ``anpr.PlateReader`` (another module, tested on its own): reads one plate, better and better."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, image: np.ndarray) -> list[Reading]:
        self.calls += 1
        assert image.shape == (360, 640, 3)
        score = 0.5 + 0.05 * min(self.calls, 6)
        return [Reading("123 ABC 02", "123ABC02", "02", score, (300, 200, 80, 20))]


def test_pipeline_reads_plates_on_motion_once_per_plate(synth: tuple[bytes, list[Fragment]]) -> None:
    init, fragments = synth
    observations: list[Observation] = []
    reader = ScriptedPlates()
    config = AnalysisConfig(anpr=True, plate_fps=2.0)
    pipeline = CameraPipeline(4, config, observations.append, plate_reader=reader)
    for fragment in fragments:
        pipeline.process(init, fragment)
    pipeline.close(T0 + timedelta(seconds=10))
    # Only on frames with motion (3-6 s), at most twice a second.
    assert 4 <= reader.calls <= 7
    plates = [o for o in observations if o.kind == "plate"]
    assert len(plates) == 1
    plate = plates[0]
    assert plate.phase == "end" and plate.start == plate.end and plate.plate == "123ABC02"
    assert plate.plate_region == "02" and plate.score == pytest.approx(0.5 + 0.05 * min(reader.calls, 6))
    assert BOX_FROM <= seconds(plate.start) <= BOX_TO + 0.2
    assert plate.box == pytest.approx((300 / 640, 200 / 360, 80 / 640, 20 / 360), abs=1e-3)
    assert is_jpeg(plate.snapshot).shape == (360, 640, 3)
    crop = is_jpeg(plate.crop)
    assert 80 <= crop.shape[1] <= 110 and 20 <= crop.shape[0] <= 40


def test_analysis_config_from_settings() -> None:
    from kuzet.config import OperationsConfig
    from kuzet.store.models.operations import CameraAnalysis

    defaults = AnalysisConfig.from_settings(None, OperationsConfig())
    assert (defaults.motion, defaults.fps, defaults.objects, defaults.anpr, defaults.zones) == (True, 5.0, False,
                                                                                                False, [])
    row = CameraAnalysis(camera_id=1, motion=True, fps=2.0, sensitivity=80, min_area=0.01, objects=True,
                         detector="onnx", anpr=True,
                         zones=[{"name": "gate", "kind": "zone", "points": [[0, 0], [0.5, 0], [0.5, 1]]},
                                {"name": "tree", "kind": "mask", "points": [[0.6, 0], [1, 0], [1, 1]]},
                                {"name": "line", "kind": "zone", "points": [[0, 0], [1, 1]]}])
    ops = OperationsConfig(object_fps=3, plate_fps=1, onnx_model="/models/yolo.onnx", onnx_labels=["a", "b"])
    config = AnalysisConfig.from_settings(row, ops)
    assert (config.fps, config.sensitivity, config.min_area, config.detector, config.object_fps,
            config.plate_fps) == (2.0, 80, 0.01, "onnx", 3.0, 1.0)
    assert [(z.name, z.kind) for z in config.zones] == [("gate", "zone"), ("tree", "mask")]
    assert str(config.onnx_model) == "/models/yolo.onnx" and config.onnx_labels == ["a", "b"]
    # Object detection that cannot run here is switched off with a warning, motion goes on.
    pipeline = CameraPipeline(1, config, lambda _obs: None)
    assert pipeline.detector is None and any("yolo.onnx" in w for w in pipeline.warnings)


# --- the benchmark ----------------------------------------------------------------------------------------------------

def test_bench_motion_runs_and_reports_against_the_ceiling(synth_clip: Path) -> None:
    result = run_motion_benchmark(3, 1.0, file=synth_clip, warmup=1.0, workers=2)
    run = result["run"]
    assert result["clip"]["width"] == 640 and result["clip"]["fragment_seconds"] == pytest.approx(0.25, abs=0.05)
    assert run["fragments_processed"] >= 3 * 6 and run["errors"] == 0 and run["frames_analysed"] > 0
    assert run["percent_per_stream"] > 0 and run["streams_per_core"] > 0
    assert result["ceiling_ffmpeg"]["percent_per_stream"] > 0 and result["ceiling_pyav"]["streams_per_core"] > 0
    assert result["detector"]["small_picture"] == [320, 180]
    assert "vs_ffmpeg_ceiling" in result and isinstance(result["goal"]["met"], bool)


def test_bench_motion_is_a_kuzet_bench_command() -> None:
    from typer.testing import CliRunner

    from kuzet.cli.main import app

    out = CliRunner().invoke(app, ["bench", "motion", "--help"])
    assert out.exit_code == 0 and "--streams" in out.output
