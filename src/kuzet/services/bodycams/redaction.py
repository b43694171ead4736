"""Redaction for disclosure: bystanders' faces blurred in a copy; the original stays untouched.

Detection is OpenCV's bundled Haar cascade (``cv2.data.haarcascades``: frontal and profile faces; the Russian plate
cascade for plates), run on a grey copy of the frame scaled to ``DETECT_WIDTH`` every ``every`` frames. Faces are
**tracked** across frames: a detection joins the track whose box it overlaps most (IoU), a track is carried (with its
last motion) over the frames between detections and for ``HOLD`` detection rounds in which the detector misses it, so
a face that the cascade loses for a moment stays blurred. Boxes are padded by ``MARGIN`` before blurring.

The operator reviews the plan (``Plan``): every track with its boxes; a track can be left unblurred (a police officer,
the suspect the court must see) and boxes added by hand over a range of frames. ``render`` then writes the redacted
copy (H.264 MP4, pixelated and blurred boxes) frame by frame with PyAV, with the recording's sound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DETECT_WIDTH = 640  # faces from ~50 px wide in a 1280-wide frame
MARGIN = 0.3
HOLD = 6  # detection rounds a lost track is still blurred
EVERY = 2  # frames between detections around the known faces
FULL_EVERY = 8  # frames between detections over the whole picture (new faces)
LOOKAHEAD = 10  # frames a new face is blurred before it was first found (rendering runs this far behind)
CHECKPOINT_FRAMES = 250  # a planning job saves where it is this often (10 s of 25 fps video)


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]  # x, y, w, h in source pixels
    velocity: tuple[float, float] = (0.0, 0.0)
    missed: int = 0
    seen: int = 0  # the frame it was last detected in
    boxes: dict[int, list[int]] = field(default_factory=dict)  # frame → padded box


@dataclass
class Plan:
    width: int
    height: int
    fps: float
    frames: int
    tracks: dict[int, dict[int, list[int]]]  # track id → frame → [x, y, w, h]
    excluded: list[int] = field(default_factory=list)  # tracks the operator left unblurred
    added: list[dict] = field(default_factory=list)  # {"from": frame, "to": frame, "box": [x, y, w, h]}
    audio: bool = True  # the copy carries the recording's sound (the operator may leave it out)

    def boxes_at(self, frame: int) -> list[list[int]]:
        out = [boxes[frame] for tid, boxes in self.tracks.items() if tid not in self.excluded and frame in boxes]
        out += [a["box"] for a in self.added if a["from"] <= frame <= a["to"]]
        return out

    def as_dict(self) -> dict:
        return {"width": self.width, "height": self.height, "fps": self.fps, "frames": self.frames,
                "tracks": [{"id": tid, "first": min(b), "last": max(b), "frames": len(b),
                            "boxes": {str(k): v for k, v in b.items()}} for tid, b in sorted(self.tracks.items())
                           if b],
                "excluded": sorted(self.excluded), "added": self.added, "audio": self.audio}

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(width=data["width"], height=data["height"], fps=data["fps"], frames=data["frames"],
                   tracks={t["id"]: {int(k): v for k, v in t["boxes"].items()} for t in data["tracks"]},
                   excluded=list(data.get("excluded", [])), added=list(data.get("added", [])),
                   audio=bool(data.get("audio", True)))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Plan:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def _pad(box: tuple, width: int, height: int) -> list[int]:
    x, y, w, h = box
    dx, dy = w * MARGIN, h * MARGIN
    x0, y0 = max(0, int(x - dx)), max(0, int(y - dy))
    x1, y1 = min(width, int(x + w + dx)), min(height, int(y + h + dy))
    return [x0, y0, max(0, x1 - x0), max(0, y1 - y0)]


class FaceTracker:
    """Finds faces over the whole picture every ``full_every`` frames and around the known ones every ``every``
    frames (a small window each: cheap), and keeps tracks in between (see the module's docstring). A new track is
    also blurred ``LOOKAHEAD`` frames back: rendering runs that far behind, so a face entering the picture is covered
    before the detector first caught it."""

    def __init__(self, width: int, height: int, every: int = EVERY, plates: bool = False,
                 full_every: int = FULL_EVERY) -> None:
        import cv2

        self.width, self.height, self.every, self.full_every = width, height, every, full_every
        self.scale = min(1.0, DETECT_WIDTH / width)
        base = Path(cv2.data.haarcascades)
        self.cascades = [cv2.CascadeClassifier(str(base / "haarcascade_frontalface_default.xml")),
                         cv2.CascadeClassifier(str(base / "haarcascade_profileface.xml"))]
        if plates:
            self.cascades.append(cv2.CascadeClassifier(str(base / "haarcascade_russian_plate_number.xml")))
        self.tracks: list[Track] = []
        self.finished: list[Track] = []
        self.next_id = 1

    def _grey(self, luma: np.ndarray) -> np.ndarray:
        """The frame's luma (Y plane: already grey, no colour conversion), scaled down and equalised."""
        import cv2

        small = cv2.resize(luma, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA) \
            if self.scale < 1 else luma
        return cv2.equalizeHist(small)

    def _detect_in(self, grey: np.ndarray, ox: int = 0, oy: int = 0,
                   size: float | None = None) -> list[tuple[float, float, float, float]]:
        """Faces in ``grey`` (offset ``ox``, ``oy`` in the scaled picture); around a known face of ``size`` pixels
        only sizes near it are tried, which makes the local search cheap."""
        found: list[tuple[float, float, float, float]] = []
        limits = {"minSize": (22, 22)}
        if size is not None:
            low = max(22, int(size * 0.7))
            limits = {"minSize": (low, low), "maxSize": (int(size * 1.45) + 1, int(size * 1.45) + 1)}
        for cascade in self.cascades:
            for x, y, w, h in cascade.detectMultiScale(grey, scaleFactor=1.15, minNeighbors=3, **limits):
                box = ((x + ox) / self.scale, (y + oy) / self.scale, w / self.scale, h / self.scale)
                if all(_iou(box, other) < 0.3 for other in found):
                    found.append(box)
        return found

    def detect(self, luma: np.ndarray, full: bool = True) -> list[tuple[float, float, float, float]]:
        grey = self._grey(luma)
        if full:
            return self._detect_in(grey)
        found: list[tuple[float, float, float, float]] = []
        gh, gw = grey.shape
        for track in self.tracks:  # a window twice the face's size around where it is expected
            x, y, w, h = (v * self.scale for v in track.box)
            x0, y0 = max(0, int(x - w)), max(0, int(y - h))
            x1, y1 = min(gw, int(x + 2 * w)), min(gh, int(y + 2 * h))
            if x1 - x0 >= 20 and y1 - y0 >= 20:
                found += [b for b in self._detect_in(grey[y0:y1, x0:x1], x0, y0, size=max(w, h))
                          if all(_iou(b, other) < 0.3 for other in found)]
        return found

    def step(self, index: int, luma: np.ndarray) -> None:
        """Look at frame ``index`` (its Y plane); its boxes (and earlier frames' for a new face) are then in
        ``boxes_at``."""
        full = index % self.full_every == 0
        if full or index % self.every == 0:
            detections = self.detect(luma, full)
            unmatched = list(detections)
            for track in self.tracks:
                best = max(unmatched, key=lambda d: _iou(track.box, d), default=None)
                if best is not None and _iou(track.box, best) > 0.1:
                    gap = max(1, index - track.seen)
                    # where it was last seen → where it is now (the box was carried in between: undo that)
                    seen_x = track.box[0] - track.velocity[0] * gap
                    seen_y = track.box[1] - track.velocity[1] * gap
                    track.velocity = ((best[0] - seen_x) / gap, (best[1] - seen_y) / gap)
                    track.box, track.missed, track.seen = best, 0, index
                    unmatched.remove(best)
                elif full or track.missed:
                    track.missed += 1
            for det in unmatched:
                track = Track(self.next_id, det, seen=index)
                self.next_id += 1
                for back in range(max(0, index - LOOKAHEAD), index):
                    track.boxes[back] = _pad(det, self.width, self.height)
                self.tracks.append(track)
            self.finished += [t for t in self.tracks if t.missed > HOLD]
            self.tracks = [t for t in self.tracks if t.missed <= HOLD]
        else:
            for track in self.tracks:  # carried along its last motion until the next detection
                x, y, w, h = track.box
                track.box = (x + track.velocity[0], y + track.velocity[1], w, h)
        for track in self.tracks:
            track.boxes[index] = _pad(track.box, self.width, self.height)

    def boxes_at(self, index: int) -> list[list[int]]:
        return [t.boxes[index] for t in self.finished + self.tracks if index in t.boxes]

    def all_tracks(self) -> dict[int, dict[int, list[int]]]:
        return {t.id: t.boxes for t in self.finished + self.tracks}

    def checkpoint(self, frame: int, since: int) -> dict:
        """What a job taken over needs to go on at ``frame`` (the next frame to look at): the state of the live tracks
        and the boxes written since the checkpoint at ``since`` (a new track reaches ``LOOKAHEAD`` frames back)."""
        low = since - LOOKAHEAD
        return {"frame": frame, "next_id": self.next_id, "every": self.every, "full_every": self.full_every,
                "live": [{"id": t.id, "box": list(t.box), "velocity": list(t.velocity), "missed": t.missed,
                          "seen": t.seen} for t in self.tracks],
                "boxes": {str(t.id): {str(k): v for k, v in t.boxes.items() if k >= low}
                          for t in self.finished + self.tracks if t.boxes and max(t.boxes) >= low}}

    def restore(self, checkpoints: list[dict]) -> int:
        """Take up the state of the last of ``checkpoints`` (oldest first), every box of all of them; the frame to
        go on at."""
        boxes: dict[int, dict[int, list[int]]] = {}
        for point in checkpoints:
            for tid, frames in point["boxes"].items():
                boxes.setdefault(int(tid), {}).update({int(k): v for k, v in frames.items()})
        last = checkpoints[-1]
        live = {t["id"]: t for t in last["live"]}
        self.next_id = last["next_id"]
        self.tracks, self.finished = [], []
        for tid in sorted(boxes):
            if tid in live:
                t = live[tid]
                self.tracks.append(Track(tid, tuple(t["box"]), tuple(t["velocity"]), t["missed"], t["seen"],
                                         boxes[tid]))
            else:
                self.finished.append(Track(tid, (0.0, 0.0, 0.0, 0.0), boxes=boxes[tid]))
        return int(last["frame"])


def _pixelate(plane: np.ndarray, x: int, y: int, w: int, h: int, block: int) -> None:
    import cv2

    if w < 2 or h < 2:
        return
    roi = plane[y:y + h, x:x + w]
    tiny = cv2.resize(roi, (max(1, w // block), max(1, h // block)), interpolation=cv2.INTER_AREA)
    roi[:] = cv2.GaussianBlur(cv2.resize(tiny, (w, h), interpolation=cv2.INTER_NEAREST), (0, 0), 3)


def blur_boxes(yuv: np.ndarray, width: int, height: int, boxes: list[list[int]]) -> None:
    """Pixelate then blur each box in place in a yuv420p frame (``to_ndarray(format="yuv420p")``: the Y plane, then
    the U and V planes at half size), so no colour conversion is needed either way: nothing of the face survives,
    and the edges do not draw the eye."""
    y_plane = yuv[:height]
    chroma = yuv[height:].reshape(2, height // 2, width // 2)
    for x, y, w, h in boxes:
        _pixelate(y_plane, x, y, w, h, 12)
        for plane in chroma:
            _pixelate(plane, x // 2, y // 2, w // 2, h // 2, 6)


def frame_estimate(source: Path) -> int | None:
    """How many frames the video has (the stream's count, else its duration × rate), for a job's progress."""
    import av

    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            seconds = (float(stream.duration * stream.time_base) if stream.duration
                       else (container.duration or 0) / 1_000_000)
            return int(seconds * float(stream.average_rate or 25)) or None
    except Exception:  # noqa: BLE001 - the plan itself says what is wrong with the file
        return None


def plan(source: Path, every: int = EVERY, plates: bool = False,
         progress: Callable[[int], None] | None = None, checkpoint: Callable[[int, dict], None] | None = None,
         checkpoint_every: int = CHECKPOINT_FRAMES, resume: list[dict] | None = None) -> Plan:
    """Detect and track faces through the whole file: the plan the operator reviews. ``progress(frames)`` is called
    after every frame (keep it cheap); ``checkpoint(frame, state)`` every ``checkpoint_every`` frames. With the
    checkpoints of a job cut short (``resume``, oldest first) the frames before the last one are only decoded, not
    looked at again: the plan is the same as if the job had never stopped."""
    import av

    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tracker = None
        index = start = since = 0
        for frame in container.decode(stream):
            if tracker is None:
                tracker = FaceTracker(frame.width, frame.height, every, plates)
                if resume:
                    start = since = tracker.restore(resume)
            if index < start:  # looked at before the restart: its boxes came with the checkpoints
                index += 1
                continue
            yuv = frame.to_ndarray(format="yuv420p")
            tracker.step(index, yuv[:frame.height])
            index += 1
            if checkpoint is not None and index % checkpoint_every == 0:
                checkpoint(index, tracker.checkpoint(index, since))
                since = index
            if progress is not None:
                progress(index)
        fps = float(stream.average_rate or 25)
        if tracker is None:
            raise ValueError("the file has no video frames")
        return Plan(width=tracker.width, height=tracker.height, fps=fps, frames=index,
                    tracks={k: v for k, v in tracker.all_tracks().items() if v})


# audio codecs an MP4 carries as they are (copied packet for packet); any other is re-encoded to AAC
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus"}


def render(source: Path, target: Path, boxes_at, step=None, threads: int = 0,  # noqa: ANN001
           audio: bool = True) -> int:
    """Write ``target`` (H.264 MP4) from ``source`` with ``boxes_at(index)`` blurred in every frame; the frame count.
    With ``step(index, luma)`` (automatic redaction in one pass) each frame is first shown to the tracker and written
    ``LOOKAHEAD`` frames later, once its boxes are known. The first audio track is kept (``audio``): copied as it is
    when an MP4 can carry its codec, else re-encoded to AAC; video frames keep their source times, so sound and
    picture stay together."""
    from collections import deque
    from fractions import Fraction

    import av

    with av.open(str(source)) as inp, av.open(str(target), "w", format="mp4") as out:
        stream = inp.streams.video[0]
        if threads == 1:
            stream.codec_context.thread_count = 1
        else:
            stream.thread_type = "AUTO"
        rate = stream.average_rate or Fraction(25)
        video = out.add_stream("libx264", rate=rate)
        width, height = stream.codec_context.width, stream.codec_context.height
        width, height = width - width % 2, height - height % 2
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, 90_000)
        video.options = {"preset": "ultrafast", "crf": "23", "threads": str(threads)}
        sound = inp.streams.audio[0] if audio and inp.streams.audio else None
        sound_out = resampler = None
        if sound is not None:
            if sound.codec_context.name in MP4_AUDIO:
                sound_out = out.add_stream_from_template(sound)
            else:
                sound_out = out.add_stream("aac", rate=sound.codec_context.sample_rate or 48_000)
                sound_out.layout = sound.codec_context.layout.name if sound.codec_context.layout else "stereo"
                resampler = av.AudioResampler(format="fltp", layout=sound_out.layout,
                                              rate=sound_out.codec_context.sample_rate)
        behind = LOOKAHEAD if step is not None else 0
        waiting: deque[tuple[int, int, np.ndarray]] = deque()
        last_pts = -1

        def emit(index: int, pts: int, yuv: np.ndarray) -> None:
            blur_boxes(yuv, width, height, boxes_at(index))
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = pts, video.time_base
            for packet in video.encode(frame):
                out.mux(packet)

        def write_sound(packet) -> None:  # noqa: ANN001
            if resampler is None:
                if packet.dts is None:
                    return
                packet.stream = sound_out
                out.mux(packet)
                return
            for decoded in packet.decode():
                for piece in resampler.resample(decoded):
                    for encoded in sound_out.encode(piece):
                        out.mux(encoded)

        index = 0
        for packet in inp.demux(*[s for s in (stream, sound) if s is not None]):
            if packet.stream is sound:
                write_sound(packet)
                continue
            for frame in packet.decode():
                seconds = float(frame.time) if frame.time is not None else index / float(rate)
                pts = max(last_pts + 1, round(seconds * 90_000))
                last_pts = pts
                if frame.width != width or frame.height != height or frame.format.name != "yuv420p":
                    frame = frame.reformat(width=width, height=height, format="yuv420p")
                yuv = frame.to_ndarray(format="yuv420p")
                if step is not None:
                    step(index, yuv[:height])
                waiting.append((index, pts, yuv))
                if len(waiting) > behind:
                    emit(*waiting.popleft())
                index += 1
        while waiting:
            emit(*waiting.popleft())
        for packet in video.encode():
            out.mux(packet)
        if resampler is not None:
            for piece in resampler.resample(None):
                for encoded in sound_out.encode(piece):
                    out.mux(encoded)
            for encoded in sound_out.encode(None):
                out.mux(encoded)
    return index


def redact_automatically(source: Path, target: Path, every: int = EVERY, threads: int = 0) -> tuple[int, Plan]:
    """Detect, track and blur in one pass (what the benchmark times); the frames and the plan it followed."""
    import av

    with av.open(str(source)) as probe_container:
        ctx = probe_container.streams.video[0].codec_context
        width, height = ctx.width, ctx.height
    tracker = FaceTracker(width, height, every)
    frames = render(source, target, tracker.boxes_at, tracker.step, threads)
    return frames, Plan(width=width, height=height, fps=0, frames=frames,
                        tracks={k: v for k, v in tracker.all_tracks().items() if v})
