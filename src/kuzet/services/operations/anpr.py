"""Licence plates read from a camera's picture (ANPR): find plate-like text, read it, keep what is a Kazakhstan plate.

Two ways of finding candidates, both cheap next to reading them:

- OpenCV morphology at full resolution: dark characters on a light plate (black-hat), joined along the line
  (horizontal gradient, closing), kept where the blob has a plate's proportions;
- rapidocr's text detector (a small ONNX network) on the picture scaled down to ``det_side`` pixels, its boxes joined
  into lines — the plate's bar splits "123 ABC | 02" into two boxes.

The detector runs only when morphology found no plate: on a road camera that is the frame without a car, or a plate
the morphology missed (a light car behind a light plate, a tilted plate). Each candidate is cut from the
full-resolution picture and read by rapidocr's recogniser; a reading counts only if
:func:`kuzet.domain.plates.normalise` accepts it, and each plate is reported once, with its best reading.

Cost on 2 cores, 1280x720, one ONNX thread: ≈ 20 ms for a frame whose plate the morphology finds (one recogniser
pass); ≈ 50–80 ms for a frame without a plate (detector and a few recogniser passes).

rapidocr and onnxruntime are the optional extra ``anpr`` (``pip install 'kuzet[anpr]'``) so the base install stays
small. The recogniser's and detector's weights come inside the rapidocr wheel; they are passed by path, so rapidocr
never reaches for its download code: the product must not fetch anything at run time (police networks are closed).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kuzet.domain.plates import PlateNumber, normalise

log = logging.getLogger("kuzet.anpr")

DET_MODEL = "PP-OCRv6_det_small.onnx"
REC_MODEL = "PP-OCRv6_rec_small.onnx"
PLATE_ASPECT = (2.0, 9.0)  # width / height of a one-line plate, flag strip and region box included or not
MAX_CANDIDATES = 8  # readings per picture, best candidates first: bounds the cost of a busy picture
MIN_WIDTH = 64  # px: a narrower plate has characters under ~9 px, where OCR guesses (B for 8) rather than reads
MIN_SCORE = 0.6
DET_MARGIN = 1.25  # the detector's boxes reach this much beyond the characters (its "unclip")


class AnprUnavailable(RuntimeError):
    """Plate reading cannot run here: the ``anpr`` extra is not installed or its models are missing."""


def available() -> bool:
    """Whether the optional ``anpr`` extra (rapidocr + onnxruntime) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("rapidocr", "onnxruntime"))


@dataclass
class PlateReading:
    text: str  # what the OCR read, e.g. "123 ABC02"
    plate: str  # normalised, e.g. "123ABC02"
    region: str | None  # region code, e.g. "02"
    score: float  # 0..1: recogniser confidence, lowered for every character the format had to fix
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the image given to read()


Box = tuple[int, int, int, int]


def _model_paths() -> tuple[Path, Path]:
    if not available():
        raise AnprUnavailable("licence plate reading needs the 'anpr' extra: pip install 'kuzet[anpr]' "
                              "(rapidocr and onnxruntime)")
    spec = importlib.util.find_spec("rapidocr")
    assert spec is not None and spec.origin is not None
    models = Path(spec.origin).parent / "models"
    paths = models / DET_MODEL, models / REC_MODEL
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise AnprUnavailable(f"rapidocr's bundled models are missing ({', '.join(missing)} in {models}); Kuzet "
                              "does not download models at run time — install a rapidocr wheel that ships them")
    return paths


def localise(gray: np.ndarray) -> list[Box]:
    """Plate-like regions of a grey picture: lines of dark characters on a light background, plate-shaped."""
    h, w = gray.shape[:2]
    unit = max(3, h // 120)  # ≈ a character's stroke at the plate sizes we read (6 px at 720p)
    blackhat = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT,
                                                                                   (unit * 5, unit * 3)))
    grad = np.abs(cv2.Sobel(blackhat, cv2.CV_32F, 1, 0, ksize=3))
    grad = cv2.GaussianBlur(grad, (5, 5), 0)
    top = float(grad.max())
    if top <= 0:
        return []
    grad = (grad * (255.0 / top)).astype(np.uint8)
    joined = cv2.morphologyEx(grad, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (unit * 5, unit)))
    _, mask = cv2.threshold(joined, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (unit, unit)))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes: list[tuple[float, Box]] = []
    for contour in contours:
        x, y, bw, bh = cv2.boundingRect(contour)
        if bh < 10 or bw < MIN_WIDTH or bw < 2.5 * bh or bw > 9 * bh or bw > w // 2:
            continue
        if not _dark_on_light(gray, (x, y, bw, bh)):
            continue
        fill = cv2.contourArea(contour) / float(bw * bh)
        boxes.append((fill * bw * bh, (x, y, bw, bh)))
    boxes.sort(key=lambda item: -item[0])
    return [b for _, b in boxes[:MAX_CANDIDATES]]


def _dark_on_light(gray: np.ndarray, box: Box) -> bool:
    """Dark characters on a light plate: most of the box is light (white text on a dark box is the opposite)."""
    x, y, w, h = box
    region = gray[max(0, y):y + h, max(0, x):x + w]
    return region.size > 0 and float(np.median(region)) >= 110


def _union(boxes: list[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def _same_line(a: Box, b: Box) -> bool:
    """``b`` continues the text line of ``a`` (``b`` to the right): similar height, overlapping rows, a small gap."""
    overlap = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    small, big = sorted((a[3], b[3]))
    gap = b[0] - (a[0] + a[2])
    return overlap >= 0.5 * small and big <= 1.8 * small and gap <= 1.5 * big


def lines(boxes: list[Box]) -> list[Box]:
    """Text boxes joined into plate candidates: every run of up to three neighbouring boxes on one line."""
    boxes = sorted(boxes, key=lambda b: b[0])
    groups: list[list[Box]] = []
    for box in boxes:
        for group in groups:
            if _same_line(group[-1], box):
                group.append(box)
                break
        else:
            groups.append([box])
    out: list[Box] = []
    for group in groups:
        for i in range(len(group)):
            for j in range(i, min(len(group), i + 3)):
                run = _union(group[i:j + 1])
                if run[2] >= MIN_WIDTH * DET_MARGIN and PLATE_ASPECT[0] <= run[2] / run[3] <= PLATE_ASPECT[1]:
                    out.append(run)
    return out


def _padded(image: np.ndarray, box: Box) -> Box:
    """The box with a margin, inside the picture: the recogniser reads better with some plate around the text."""
    x, y, w, h = box
    pad_x, pad_y = max(2, w // 20), max(2, h // 6)
    x0, y0 = max(0, x - pad_x), max(0, y - pad_y)
    x1, y1 = min(image.shape[1], x + w + pad_x), min(image.shape[0], y + h + pad_y)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


class PlateReader:
    """Reads Kazakhstan plates in BGR pictures. Create one per worker thread: the OCR engine loads once (about a
    second); :meth:`read` is serialised by a lock, so sharing a reader is safe, only not parallel."""

    def __init__(self, det_side: int = 640, threads: int = 1, detector: bool = True) -> None:
        det_model, rec_model = _model_paths()
        from rapidocr import RapidOCR

        self.det_side = det_side
        self.detector = detector
        self._lock = threading.Lock()
        self._engine = RapidOCR(params={
            "Global.log_level": "error",
            "Global.use_cls": False,  # plates are upright; the angle classifier would only cost time
            "Det.model_path": str(det_model),
            "Det.limit_type": "max",
            "Det.limit_side_len": det_side,
            "Rec.model_path": str(rec_model),
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })
        # Load both networks now, not on the first camera frame.
        self._recognise(np.full((48, 160, 3), 255, np.uint8))
        if detector:
            self._detect(np.full((64, 64, 3), 255, np.uint8))

    def _detect(self, image: np.ndarray) -> list[Box]:
        out = self._engine(image, use_det=True, use_cls=False, use_rec=False)
        if getattr(out, "boxes", None) is None:
            return []
        boxes = []
        for quad in out.boxes:
            x, y, w, h = cv2.boundingRect(np.asarray(quad, np.float32).astype(np.int32))
            boxes.append((int(x), int(y), int(w), int(h)))
        return boxes

    def _recognise(self, crop: np.ndarray) -> tuple[str, float]:
        out = self._engine(crop, use_det=False, use_cls=False, use_rec=True)
        texts, scores = getattr(out, "txts", None), getattr(out, "scores", None)
        if not texts:
            return "", 0.0
        return str(texts[0]), float(scores[0])

    def _read_boxes(self, image: np.ndarray, boxes: list[Box], found: dict[str, PlateReading],
                    tried: list[Box]) -> None:
        for box in boxes:
            if any(_iou(box, t) > 0.8 for t in tried):
                continue
            tried.append(box)
            x, y, w, h = padded = _padded(image, box)
            if w == 0 or h == 0:
                continue
            text, score = self._recognise(image[y:y + h, x:x + w])
            plate = None if ":" in text else normalise(text)  # a colon is a clock: cameras burn the time in
            if plate is None:
                continue
            reading = _reading(text, plate, score, padded)
            if reading.score < MIN_SCORE:
                continue
            best = found.get(plate.plate)
            if best is None or reading.score > best.score:
                found[plate.plate] = reading

    def read(self, image: np.ndarray) -> list[PlateReading]:
        """The plates in a BGR uint8 picture, best first; an empty list if none is readable."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError("read() takes a BGR uint8 picture (height x width x 3)")
        with self._lock:
            found: dict[str, PlateReading] = {}
            tried: list[Box] = []
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            self._read_boxes(image, localise(gray), found, tried)
            if self.detector and not found:
                runs = [b for b in lines(self._detect(image)) if _dark_on_light(gray, b)]
                self._read_boxes(image, runs[:MAX_CANDIDATES], found, tried)
        return sorted(found.values(), key=lambda r: -r.score)


def _reading(text: str, plate: PlateNumber, score: float, box: Box) -> PlateReading:
    """A reading scored by the recogniser's confidence, 15 % less for every character the format had to fix."""
    return PlateReading(text=text, plate=plate.plate, region=plate.region,
                        score=round(score * 0.85 ** plate.corrections, 4), box=box)
