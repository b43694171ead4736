"""Object detection on a camera picture: who or what is in the moving parts of it.

Two back ends behind one ``Detector`` protocol:

- ``HogPeopleDetector`` — OpenCV's HOG + linear SVM people detector (Dalal-Triggs). Ships with OpenCV, needs no
  model file and no extra package, so every installation can find people. It is slow on whole pictures, so it looks
  only at the regions where motion was found, enlarged so that a person of the region's height fills the 64x128 window
  the detector was trained on (sub streams show people 40-100 px tall).
- ``OnnxDetector`` — a YOLO-family ``.onnx`` model that the operator supplies (nothing is downloaded), run with
  onnxruntime (an optional extra, imported only when this back end is chosen). Handles YOLOv5-style output
  ``[1, N, 5 + classes]`` and YOLOv8-style output ``[1, 4 + classes, N]``.

Boxes are in pixels of the picture given (x, y, w, h).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

PixelBox = tuple[int, int, int, int]  # x, y, w, h in pixels

COCO_LABELS = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]
DEFAULT_KEEP = ("person", "car", "truck", "bus", "motorcycle", "bicycle")


class DetectorUnavailable(RuntimeError):
    """The chosen back end cannot run here (missing package, missing or unreadable model file)."""


@dataclass(frozen=True)
class Detection:
    label: str
    score: float  # 0..1
    box: PixelBox


class Detector(Protocol):
    def detect(self, image: np.ndarray, regions: list[PixelBox] | None = None) -> list[Detection]:
        """Objects in a BGR picture; with ``regions`` (pixel boxes of motion) only those in or touching them."""
        ...


def nms(detections: list[Detection], threshold: float = 0.45) -> list[Detection]:
    """Non-maximum suppression per label (OpenCV's ``NMSBoxesBatched``): the best of overlapping boxes."""
    if len(detections) < 2:
        return detections
    labels = sorted({d.label for d in detections})
    keep = cv2.dnn.NMSBoxesBatched([list(d.box) for d in detections], [float(d.score) for d in detections],
                                   [labels.index(d.label) for d in detections], 0.0, threshold)
    return [detections[int(i)] for i in np.array(keep).reshape(-1)]


def _overlaps(box: PixelBox, regions: Iterable[PixelBox]) -> bool:
    x, y, w, h = box
    return any(x < rx + rw and rx < x + w and y < ry + rh and ry < y + h for rx, ry, rw, rh in regions)


def _merge(boxes: list[list[int]]) -> list[list[int]]:
    """Merge overlapping boxes (x0, y0, x1, y1) until none overlap, so no area is searched twice."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


class HogPeopleDetector:
    """People with OpenCV's HOG descriptor and its default people SVM, on motion regions scaled to fit the window.

    ``hit_threshold`` is the SVM margin a window needs (0 finds more and more wrongly); the score reported is that
    margin squashed to 0..1 by a logistic (0.5 at margin 0). The detector's box has a margin around the person (the
    64x128 window holds a ~96 px person); it is trimmed to the person.
    """

    WINDOW = (64, 128)

    def __init__(self, *, hit_threshold: float = 0.4, person_height: int = 112, max_upscale: float = 3.0,
                 nms_threshold: float = 0.4, scale_step: float = 1.05) -> None:
        self.hit_threshold = hit_threshold
        self.person_height = person_height  # a region is scaled so its height becomes at least this
        self.max_upscale = max_upscale
        self.nms_threshold = nms_threshold
        self.scale_step = scale_step
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image: np.ndarray, regions: list[PixelBox] | None = None) -> list[Detection]:
        height, width = image.shape[:2]
        if regions is None:
            areas = [([0, 0, width, height], 1.0)]
        else:
            areas = self._areas(regions, width, height)
        found: list[Detection] = []
        for (x0, y0, x1, y1), scale in areas:
            crop = image[y0:y1, x0:x1]
            if scale != 1.0:
                crop = cv2.resize(crop, (round((x1 - x0) * scale), round((y1 - y0) * scale)),
                                  interpolation=cv2.INTER_LINEAR)
            if crop.shape[0] < self.WINDOW[1] or crop.shape[1] < self.WINDOW[0]:
                continue
            rects, weights = self._hog.detectMultiScale(crop, hitThreshold=self.hit_threshold, winStride=(8, 8),
                                                        padding=(8, 8), scale=self.scale_step)
            for (rx, ry, rw, rh), weight in zip(rects, np.ravel(weights), strict=False):
                # Trim the window's margin: the person is about the middle 60 % of its width, 85 % of its height.
                bx, by = x0 + (rx + 0.2 * rw) / scale, y0 + (ry + 0.07 * rh) / scale
                box = (round(bx), round(by), max(1, round(0.6 * rw / scale)), max(1, round(0.86 * rh / scale)))
                found.append(Detection("person", round(1 / (1 + math.exp(-float(weight))), 4), box))
        return nms(found, self.nms_threshold)

    def _areas(self, regions: Sequence[PixelBox], width: int, height: int) -> list[tuple[list[int], float]]:
        """Padded search areas (x0, y0, x1, y1) and the upscale that makes a person of the region's height fit."""
        win_w, win_h = self.WINDOW
        padded: list[tuple[list[int], float]] = []
        for x, y, w, h in regions:
            if w <= 0 or h <= 0:
                continue
            scale = min(self.max_upscale, max(1.0, self.person_height / h))
            # Context around the moving part (HOG needs the whole silhouette and some background), and at least
            # a window and a stride of margin once scaled.
            pad_x, pad_y = max(0.5 * w, 0.25 * h), 0.3 * h
            need_w, need_h = (win_w + 32) / scale, (win_h + 32) / scale
            cx, cy = x + w / 2, y + h / 2
            half_w, half_h = max(w / 2 + pad_x, need_w / 2), max(h / 2 + pad_y, need_h / 2)
            box = [max(0, int(cx - half_w)), max(0, int(cy - half_h)),
                   min(width, math.ceil(cx + half_w)), min(height, math.ceil(cy + half_h))]
            padded.append((box, scale))
        if not padded:
            return []
        # Overlapping areas are searched once, at the largest upscale any of them needs.
        merged = _merge([b for b, _ in padded])
        out = []
        for box in merged:
            scales = [s for b, s in padded if b[0] >= box[0] and b[1] >= box[1] and b[2] <= box[2] and b[3] <= box[3]]
            out.append((box, max(scales) if scales else 1.0))
        return out


class OnnxDetector:
    """A YOLO-family ONNX model (YOLOv5 ``[1, N, 5+C]`` or YOLOv8 ``[1, 4+C, N]`` output) run with onnxruntime.

    The picture is letterboxed to the model's input size (read from the model; 640 where it is dynamic). Only the
    ``keep`` classes are reported. With ``regions``, only objects overlapping a motion region are kept: a parked car
    is no event, the moving one is.
    """

    def __init__(self, model_path: str | Path, labels: Sequence[str] | None = None, *,
                 keep: Iterable[str] | None = DEFAULT_KEEP, score_threshold: float = 0.35,
                 nms_threshold: float = 0.45, threads: int = 1) -> None:
        self.path = Path(model_path)
        self.labels = list(labels) if labels else list(COCO_LABELS)
        self.keep = set(keep) if keep is not None else None
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise DetectorUnavailable(
                "the onnx detector needs onnxruntime, which is not installed "
                "(pip install onnxruntime, or the kuzet[anpr] extra)") from exc
        if not self.path.is_file():
            raise DetectorUnavailable(f"{self.path}: no such ONNX model file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # one per camera pipeline: the pool already has a thread per core
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for every kind of bad file
            raise DetectorUnavailable(f"{self.path}: cannot load the ONNX model: {exc}") from exc
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        self._half = model_input.type == "tensor(float16)"
        shape = list(model_input.shape)
        if len(shape) != 4:
            raise DetectorUnavailable(f"{self.path}: expected an image input [1, 3, H, W], got {shape}")
        self.input_height = shape[2] if isinstance(shape[2], int) and shape[2] > 0 else 640
        self.input_width = shape[3] if isinstance(shape[3], int) and shape[3] > 0 else 640

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        height, width = image.shape[:2]
        ratio = min(self.input_width / width, self.input_height / height)
        new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        pad_x, pad_y = (self.input_width - new_w) / 2, (self.input_height - new_h) / 2
        canvas = np.full((self.input_height, self.input_width, 3), 114, np.uint8)
        left, top = int(round(pad_x - 0.1)), int(round(pad_y - 0.1))
        canvas[top:top + new_h, left:left + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(canvas, 1 / 255.0, swapRB=True)  # NCHW, RGB, 0..1
        return (blob.astype(np.float16) if self._half else blob), ratio, left, top

    def _rows(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N x 4 boxes cx, cy, w, h; N x C class scores) from a YOLOv5 or YOLOv8 output."""
        arr = np.asarray(output, np.float32)
        if arr.ndim == 3:
            arr = arr[0]
        if arr.ndim != 2:
            raise ValueError(f"{self.path}: unsupported output shape {list(np.shape(output))}")
        classes = len(self.labels)
        rows, cols = arr.shape
        if rows == 4 + classes and cols != 5 + classes:
            v8 = True
        elif cols == 5 + classes:
            v8 = False
        else:
            v8 = rows < cols  # labels do not match: YOLOv8 has few rows (4 + C) and many columns (anchors)
        if v8:
            arr = arr.T
            return arr[:, :4], arr[:, 4:]
        return arr[:, :4], arr[:, 5:] * arr[:, 4:5]  # YOLOv5: objectness x class probability

    def detect(self, image: np.ndarray, regions: list[PixelBox] | None = None) -> list[Detection]:
        height, width = image.shape[:2]
        blob, ratio, left, top = self._letterbox(image)
        output = self._session.run(None, {self._input: blob})[0]
        boxes, scores = self._rows(output)
        if scores.shape[1] == 0:
            return []
        class_ids = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), class_ids]
        found: list[Detection] = []
        for i in np.flatnonzero(best >= self.score_threshold):
            cid = int(class_ids[i])
            label = self.labels[cid] if cid < len(self.labels) else f"class{cid}"
            if self.keep is not None and label not in self.keep:
                continue
            cx, cy, bw, bh = (float(v) for v in boxes[i])
            x0 = max(0.0, (cx - bw / 2 - left) / ratio)
            y0 = max(0.0, (cy - bh / 2 - top) / ratio)
            x1 = min(float(width), (cx + bw / 2 - left) / ratio)
            y1 = min(float(height), (cy + bh / 2 - top) / ratio)
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            box = (round(x0), round(y0), round(x1 - x0), round(y1 - y0))
            if regions is not None and not _overlaps(box, regions):
                continue
            found.append(Detection(label, round(float(best[i]), 4), box))
        return nms(found, self.nms_threshold)


def make_detector(name: str, settings: Any = None) -> Detector:
    """The back end ``name`` ("hog" | "onnx"); ``settings`` (``OperationsConfig`` or ``AnalysisConfig``) gives the
    ONNX model file and its labels. Raises ``DetectorUnavailable`` with what is missing."""
    if name == "hog":
        return HogPeopleDetector()
    if name == "onnx":
        model = getattr(settings, "onnx_model", None)
        if not model:
            raise DetectorUnavailable("the onnx detector needs a model file: set operations.onnx_model in kuzet.toml")
        return OnnxDetector(model, getattr(settings, "onnx_labels", None))
    raise ValueError(f"unknown detector {name!r} (hog or onnx)")
