"""Scenes of the simulator drawn frame by frame — the "road" scene: a car carrying a Kazakhstan plate drives up to a
stop line, waits, drives on.

Frames are drawn with OpenCV (the plate's text with PIL and DejaVu, the font matplotlib ships) and piped to FFmpeg
by ``clips.py``. The picture is a fixed road camera over an entrance lane: road in perspective, lane marks and a stop
line, the car coming from the distance, stopping for about a second with its plate large enough to read on a 720p main
stream (≈ a seventh of the picture's width) and still visible on a 640x360 sub stream, then leaving at the bottom.
Nothing moves but the car, so the clip compresses like real CCTV.

:data:`DEMO_PLATE` is the plate the demo's road cameras show (and its hot list wants).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from kuzet.domain.plates import PlateNumber

if TYPE_CHECKING:
    from PIL import ImageDraw, ImageFont

DEMO_PLATE = "515KYZ11"  # Kyzylorda region, like the demo city
PLATE_RATIO = 520 / 112  # a Kazakhstan plate is 520 x 112 mm
FLAG_BLUE = (202, 175, 0)  # BGR of the flag's sky blue
FLAG_GOLD = (0, 197, 254)
PASS_SECONDS = 4.0  # one car per 4 s: 3 passes in the default 12 s loop
PLATE_WIDTH_AT_STOP = 0.14  # of the picture's width while the car waits: 179 px on 1280, 90 px on 640
CAR_WIDTH = 3.6  # plate widths: a car is ~1.8 m wide, its plate 0.52 m
PLATE_Y = 0.64  # top of the plate on the car's front, in car heights
CONDENSED = 0.8  # plates use a narrow typeface: DejaVu is drawn wider, then the plate is squeezed


def _font(bold: bool = True) -> str:
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name)


def render_plate(plate: PlateNumber, height: int = 112) -> np.ndarray:
    """A white Kazakhstan plate (BGR): flag and "KZ" on the left, the number, and for the 2012 formats the bar and
    the region code box on the right."""
    from PIL import Image, ImageDraw, ImageFont

    h = height
    w = round(h * PLATE_RATIO / CONDENSED)
    img = Image.new("RGB", (w, h), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    line = max(2, h // 30)
    draw.rounded_rectangle([line // 2, line // 2, w - 1 - line // 2, h - 1 - line // 2], radius=h // 10,
                           outline=(0, 0, 0), width=line)
    strip = round(w * 0.10)
    # The flag: sky blue with the golden sun (the eagle is too fine to matter at CCTV resolution).
    fx0, fy0, fx1, fy1 = round(h * 0.09), round(h * 0.12), strip, round(h * 0.52)
    draw.rectangle([fx0, fy0, fx1, fy1], fill=FLAG_BLUE[::-1])
    cx, cy, r = (fx0 + fx1) // 2, (fy0 + fy1) // 2, (fy1 - fy0) // 4
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=FLAG_GOLD[::-1])
    small = ImageFont.truetype(_font(), round(h * 0.26))
    draw.text(((fx0 + fx1) // 2, round(h * 0.74)), "KZ", font=small, fill=(0, 0, 0), anchor="mm")
    big = ImageFont.truetype(_font(), round(h * 0.70))
    number = plate.plate
    if plate.region and plate.format in ("individual", "legal_entity"):
        sep = round(w * 0.79)
        main = f"{number[:3]} {number[3:-2]}"
        draw.line([sep, line, sep, h - line], fill=(0, 0, 0), width=line)
        draw.text(((sep + w) // 2, h // 2), number[-2:], font=big, fill=(0, 0, 0), anchor="mm")
    else:
        sep = w - line
        main = f"{number[0]} {number[1:4]} {number[4:]}"
    _fit_text(draw, main, big, (strip + sep) // 2, h // 2, sep - strip - 2 * line)
    bgr = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    return cv2.resize(bgr, (round(h * PLATE_RATIO), h), interpolation=cv2.INTER_AREA)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, x: int, y: int,
              max_width: int) -> None:
    """Draw ``text`` centred at (x, y), shrinking the font until it fits ``max_width``."""
    size = font.size
    while size > 8 and draw.textlength(text, font=font) > max_width:
        size -= 1
        font = font.font_variant(size=size)
    draw.text((x, y), text, font=font, fill=(0, 0, 0), anchor="mm")


def render_car(plate_image: np.ndarray, colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A car seen from the front (BGR and alpha mask), the plate on its bumper."""
    ph, pw = plate_image.shape[:2]
    w = round(pw * CAR_WIDTH)
    h = round(w * 0.78)
    car = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    dark = tuple(int(c * 0.55) for c in colour)
    # Wheels, body, roof and windscreen.
    for x0 in (round(w * 0.06), round(w * 0.78)):
        cv2.rectangle(car, (x0, round(h * 0.78)), (x0 + round(w * 0.16), h - 1), (20, 20, 20), -1)
        cv2.rectangle(mask, (x0, round(h * 0.78)), (x0 + round(w * 0.16), h - 1), 255, -1)
    body = np.array([[0.02, 0.50], [0.10, 0.40], [0.90, 0.40], [0.98, 0.50], [0.98, 0.90], [0.02, 0.90]])
    roof = np.array([[0.16, 0.42], [0.27, 0.04], [0.73, 0.04], [0.84, 0.42]])
    glass = np.array([[0.21, 0.39], [0.30, 0.09], [0.70, 0.09], [0.79, 0.39]])
    for poly, fill in ((roof, colour), (body, colour), (glass, (70, 55, 45))):
        pts = (poly * [w, h]).astype(np.int32)
        cv2.fillPoly(car, [pts], fill, lineType=cv2.LINE_AA)
        cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA)
    cv2.rectangle(car, (round(w * 0.30), round(h * 0.50)), (round(w * 0.70), round(h * 0.60)), dark, -1)  # grille
    for cx in (0.14, 0.86):  # headlights
        cv2.ellipse(car, (round(w * cx), round(h * 0.55)), (round(w * 0.08), round(h * 0.04)), 0, 0, 360,
                    (215, 240, 250), -1, cv2.LINE_AA)
    cv2.rectangle(car, (round(w * 0.02), round(h * 0.84)), (round(w * 0.98), round(h * 0.90)), dark, -1)  # bumper
    x0, y0 = (w - pw) // 2, round(h * PLATE_Y)
    car[y0:y0 + ph, x0:x0 + pw] = plate_image
    return car, mask


@dataclass(frozen=True)
class RoadLayout:
    width: int
    height: int

    @property
    def horizon(self) -> int:
        return round(self.height * 0.22)

    @property
    def vanish_x(self) -> int:
        return round(self.width * 0.58)

    @property
    def lane_x(self) -> int:
        """Where the middle of the incoming lane meets the bottom of the picture."""
        return round(self.width * 0.40)

    @property
    def stop_y(self) -> int:
        """Where the waiting car's wheels stand."""
        return round(self.height * 0.93)


@cache
def _noise(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return cv2.GaussianBlur(rng.normal(0, 6, (height, width)).astype(np.float32), (3, 3), 0)


def render_background(layout: RoadLayout) -> np.ndarray:
    """The empty road: sky, verges, asphalt in perspective with lane marks and a stop line."""
    w, h, hy, vx = layout.width, layout.height, layout.horizon, layout.vanish_x
    img = np.zeros((h, w, 3), np.uint8)
    sky = np.linspace(235, 185, hy, dtype=np.float32)[:, None]
    img[:hy] = np.stack([sky + 10, sky, sky - 20], axis=-1).clip(0, 255).astype(np.uint8)
    img[hy:] = (95, 120, 105)  # grass verge
    left, right = -round(w * 0.25), w + round(w * 0.90)
    road = np.array([[vx - w // 60, hy], [vx + w // 60, hy], [right, h], [left, h]], np.int32)
    cv2.fillPoly(img, [road], (92, 92, 96))
    # Kerbs, centre dashes (perspective: dash length grows toward the camera) and the stop line.
    for x_bottom in (left + w // 40, right - w // 40):
        cv2.line(img, (vx, hy), (x_bottom, h), (200, 200, 200), max(2, w // 300), cv2.LINE_AA)
    centre_bottom = round(w * 0.98)
    t = 0.02
    while t < 1:
        t2 = t + 0.02 + 0.10 * t
        y1, y2 = hy + (h - hy) * t, hy + (h - hy) * min(1.0, t2)
        x1, x2 = vx + (centre_bottom - vx) * t, vx + (centre_bottom - vx) * min(1.0, t2)
        cv2.line(img, (round(x1), round(y1)), (round(x2), round(y2)), (225, 225, 225), max(1, round(w * 0.008 * t)),
                 cv2.LINE_AA)
        t = t2 + 0.03 + 0.12 * t
    stop_y = round(hy + (layout.stop_y - hy) / 0.96)  # just in front of the waiting car
    cv2.line(img, (0, stop_y), (w, stop_y), (230, 230, 230), max(2, h // 90))
    shaded = img.astype(np.float32) + _noise(w, h)[..., None]
    return shaded.clip(0, 255).astype(np.uint8)


CAR_COLOURS = ((235, 235, 235), (40, 40, 160), (150, 90, 30), (40, 40, 40))  # BGR: white, red, blue, black


class RoadScene:
    """Frame ``i`` of the road clip: one car per :data:`PASS_SECONDS`, same plate, changing colour."""

    def __init__(self, plate: PlateNumber, width: int, height: int, fps: int) -> None:
        self.layout = RoadLayout(width, height)
        self.fps = fps
        self.background = render_background(self.layout)
        plate_px = max(24, round(width * PLATE_WIDTH_AT_STOP / PLATE_RATIO * 1.4))  # drawn large, scaled down
        plate_image = render_plate(plate, plate_px)
        self.cars = [render_car(plate_image, c) for c in CAR_COLOURS]
        self.full_width = self.cars[0][0].shape[1]

    @staticmethod
    def depth(t: float) -> float:
        """Distance of the car ``t`` seconds into its pass, 1.0 at the stop line (12 on the horizon, < 1 leaving)."""
        if t < 1.9:  # coming closer and slowing down
            u = t / 1.9
            return 1.0 + 11.0 * (1 - u) ** 2
        if t < 3.0:  # waiting at the stop line
            return 1.0
        u = (t - 3.0) / (PASS_SECONDS - 3.0)  # driving on, out of the bottom of the picture
        return 1.0 / (1.0 + 1.6 * u * u)

    def plate_box(self, index: int) -> tuple[int, int, int, int]:
        """Where the plate is in frame ``index`` (x, y, w, h; may reach outside the picture) — for tests."""
        x, y, scale, _ = self._place(index)
        car, _ = self.cars[0]
        ch, cw = car.shape[:2]
        pw = round(cw / CAR_WIDTH * scale)
        ph = round(pw / PLATE_RATIO)
        return x + (round(cw * scale) - pw) // 2, y + round(ch * scale * PLATE_Y), pw, ph

    def _place(self, index: int) -> tuple[int, int, float, int]:
        """Top-left corner, scale and colour index of the car in frame ``index``."""
        t = index / self.fps
        n, t_pass = divmod(t, PASS_SECONDS)
        z = self.depth(t_pass)
        lay = self.layout
        target_w = lay.width * PLATE_WIDTH_AT_STOP * CAR_WIDTH / z
        scale = target_w / self.full_width
        bottom = lay.horizon + (lay.stop_y - lay.horizon) / z
        centre_x = lay.vanish_x + (lay.lane_x - lay.vanish_x) / z
        car, _ = self.cars[0]
        cw, ch = round(car.shape[1] * scale), round(car.shape[0] * scale)
        return round(centre_x - cw / 2), round(bottom - ch), scale, int(n) % len(self.cars)

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (BGR): the background with the car blended in where it is at that moment."""
        img = self.background.copy()
        x, y, scale, which = self._place(index)
        car, mask = self.cars[which]
        cw, ch = round(car.shape[1] * scale), round(car.shape[0] * scale)
        if cw < 4 or ch < 4:
            return img
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        car_s = cv2.resize(car, (cw, ch), interpolation=interp)
        alpha = cv2.resize(mask, (cw, ch), interpolation=interp).astype(np.float32)[..., None] / 255.0
        H, W = img.shape[:2]
        x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + cw), min(H, y + ch)
        if x0 >= x1 or y0 >= y1:
            return img
        src = car_s[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
        a = alpha[y0 - y:y1 - y, x0 - x:x1 - x]
        roi = img[y0:y1, x0:x1].astype(np.float32)
        img[y0:y1, x0:x1] = (src * a + roi * (1 - a)).astype(np.uint8)
        return img
