"""The printable passport (PDF in Russian, Kazakh or English): labelled fields under headers, lines wrapped to the
page, the full address, the house photo and the yard's map with its streets and cameras; a version without personal
data for wider circulation.

Every word comes from the console's catalogue (``sy.*``, ``label.yard_field.*``, ``label.person_field.*``) through
``words``; counts take the plural form of the language («4 человека»), dates are written by Babel. Nothing is cut at
the margin: every text is split into lines that fit the width (``simpleSplit`` on the font's real glyph widths).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from babel.dates import format_date  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.units import mm  # noqa: E402
from reportlab.lib.utils import ImageReader, simpleSplit  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

from kuzet.domain.vocabulary import Words  # noqa: E402

CATEGORY_ORDER = ("resident", "supervised", "firearm", "rental", "volunteer")
COUNTED = {"rental": "sy.n_flats"}  # what each list counts; people otherwise
DATE_FIELDS = {"birth_date", "supervision_from", "supervision_to", "permit_expires", "period_from", "period_to",
               "check_on"}
MARGIN = 20 * mm
LABEL_W = 52 * mm


def _fonts() -> tuple[str, str]:
    regular, bold = "KuzetDejaVu", "KuzetDejaVuBold"
    if regular not in pdfmetrics.getRegisteredFontNames():
        fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont(regular, str(fonts / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(bold, str(fonts / "DejaVuSans-Bold.ttf")))
    return regular, bold


def day(value: object, lang: str) -> str:
    """A date as the language writes it («1 марта 2024 г.», «2024 ж. 1 наурыз», «March 1, 2024»); other text as is."""
    if isinstance(value, date):
        return format_date(value, "long", locale=lang)
    if isinstance(value, str) and len(value) == 10:
        try:
            return format_date(date.fromisoformat(value), "long", locale=lang)
        except ValueError:
            return value
    return "" if value is None else str(value)


def yard_map(place: dict, cameras: list[dict], streets: list[dict]) -> bytes:
    """The yard on a small map: its streets (named), the house, and the cameras by number and state."""
    fig, ax = plt.subplots(figsize=(3.4, 3.0), dpi=150)
    lat, lon = place.get("lat"), place.get("lon")
    if lat is not None:
        ax.set_xlim(lon - 0.005, lon + 0.005)
        ax.set_ylim(lat - 0.003, lat + 0.003)
    for street in streets:
        lines = street["coordinates"] if street.get("type") == "MultiLineString" else [street["coordinates"]]
        for line in lines:
            xs, ys = [p[0] for p in line], [p[1] for p in line]
            ax.plot(xs, ys, color="#95a5a6", linewidth=5, solid_capstyle="round", zorder=1)
            if street.get("name") and lat is not None:
                # the name where the line crosses the view, at its middle
                inside = [(x, y) for x, y in zip(xs, ys, strict=True)
                          if abs(x - lon) <= 0.005 and abs(y - lat) <= 0.003]
                mx, my = (sum(p[0] for p in inside) / len(inside), sum(p[1] for p in inside) / len(inside)) \
                    if inside else (lon, ys[0] if abs(ys[0] - lat) <= 0.003 else lat)
                ax.text(mx, my, street["name"], fontsize=7, ha="center", va="center", zorder=2, clip_on=True,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    if lat is not None:
        ax.plot(lon, lat, "s", color="#7f8c8d", markersize=12, zorder=3)
    for c in cameras:
        if c.get("lat") is None:
            continue
        colour = "#27ae60" if c["state"] in ("recording", "enabled") else "#e67e22"
        ax.plot(c["lon"], c["lat"], "o", color=colour, markersize=6, zorder=4)
        ax.annotate(f"№{c['id']}", (c["lon"], c["lat"]), fontsize=6, xytext=(3, 3), textcoords="offset points",
                    zorder=5, clip_on=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("auto")
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


class _Page:
    """A cursor down A4 pages: headers, labelled fields and paragraphs, each wrapped to the width."""

    def __init__(self, pdf: canvas.Canvas, top_note: str, page_label: Callable[[int], str]) -> None:
        self.pdf = pdf
        self.width, self.height = A4
        self.regular, self.bold = _fonts()
        self.top_note, self.page_label = top_note, page_label
        self.number = 0
        self._new_page()

    def _new_page(self) -> None:
        if self.number:
            self.pdf.showPage()
        self.number += 1
        self.pdf.setFont(self.regular, 8)
        for n, text in enumerate(simpleSplit(self.top_note, self.regular, 8, self.width - 2 * MARGIN)):
            self.pdf.drawString(MARGIN, self.height - 10 * mm - n * 3.5 * mm, text)
        self.pdf.drawRightString(self.width - MARGIN, 10 * mm, self.page_label(self.number))
        self.y = self.height - 20 * mm

    def need(self, height: float) -> None:
        if self.y - height < 18 * mm:
            self._new_page()

    def lines(self, text: str, size: float = 10, bold: bool = False, indent: float = 0, gap: float = 1.5) -> None:
        font = self.bold if bold else self.regular
        step = size * 1.35  # the line's height, in points
        for line in simpleSplit(text, font, size, self.width - 2 * MARGIN - indent) or [""]:
            self.need(step)
            self.pdf.setFont(font, size)
            self.pdf.drawString(MARGIN + indent, self.y - size, line)
            self.y -= step
        self.y -= gap * mm

    def header(self, text: str, size: float = 12) -> None:
        self.need(14 * mm)
        self.y -= 2 * mm
        self.lines(text, size, bold=True)

    def field(self, label: str, value: str, size: float = 10, indent: float = 0) -> None:
        """«Label   value», the value wrapped in its column (and the label in its own when it is long)."""
        label_w = LABEL_W - indent
        value_w = self.width - 2 * MARGIN - LABEL_W
        labels = simpleSplit(label, self.regular, size, label_w - 2 * mm) or [""]
        values = simpleSplit(value, self.regular, size, value_w) or ["—"]
        step = size * 1.35
        for n in range(max(len(labels), len(values))):
            self.need(step)
            self.pdf.setFont(self.regular, size)
            self.pdf.setFillColorRGB(0.35, 0.35, 0.35)
            if n < len(labels):
                self.pdf.drawString(MARGIN + indent, self.y - size, labels[n])
            self.pdf.setFillColorRGB(0, 0, 0)
            if n < len(values):
                self.pdf.drawString(MARGIN + LABEL_W, self.y - size, values[n])
            self.y -= step
        self.y -= 0.8 * mm


def passport_pdf(info: dict, lang: str, words: Words, people: list[dict] | None = None) -> bytes:
    """``info``: yard, full_address, district, joined, inspector, characteristics, notes, cameras, counts, place,
    streets, photo (its JPEG bytes, a path, or None). ``people`` (decrypted, only for the restricted version) or
    None for the version without personal data."""
    t = lambda key, **kw: words.translate(key, lang, **kw)  # noqa: E731
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setTitle(f"{t('sy.pdf.title')} — {info['yard']}")
    page = _Page(pdf, t("sy.pdf.restricted") if people is not None else t("sy.pdf.public"),
                 lambda n: t("sy.pdf.page", n=n))
    page.lines(t("sy.pdf.title"), 16, bold=True, gap=2)
    page.lines(info["yard"], 13, bold=True, gap=3)

    page.header(t("sy.pdf.general"))
    page.field(t("sy.address"), info.get("full_address") or t("sy.no_address"))
    if info.get("district"):
        page.field(t("sy.district"), info["district"])
    page.field(t("sy.joined"), day(info.get("joined"), lang))
    if info.get("inspector"):
        page.field(t("sy.inspector"), info["inspector"])

    # the house photo and the yard's map, side by side
    page.header(t("sy.pdf.map"), 11)
    page.need(62 * mm)
    top = page.y
    streets = info.get("streets") or []
    picture = yard_map(info.get("place") or {}, info["cameras"], streets)
    left = MARGIN
    photo = info.get("photo")
    if isinstance(photo, bytes):  # the JPEG from the photo store (services/safeyard/photos.py)
        photo = ImageReader(io.BytesIO(photo))
    elif photo and Path(photo).exists():
        photo = ImageReader(str(photo))
    else:
        photo = None
    if photo is not None:
        pdf.drawImage(photo, left, top - 58 * mm, 78 * mm, 58 * mm, preserveAspectRatio=True)
        left += 84 * mm
    pdf.drawImage(ImageReader(io.BytesIO(picture)), left, top - 58 * mm, 76 * mm, 58 * mm)
    page.y = top - 62 * mm

    if info.get("characteristics"):
        page.header(t("sy.characteristics_title"))
        for key, value in info["characteristics"].items():
            page.field(words.label("yard_field", key, lang), "" if value is None else str(value))

    page.header(t("sy.cameras"))
    if not info["cameras"]:
        page.lines(t("sy.no_cameras"))
    for c in info["cameras"]:
        page.field(f"№{c['id']}", f"{c['name']} — {words.label('camera_state', c['state'], lang)}")

    page.header(t("sy.people"))
    for category in CATEGORY_ORDER:
        if category in info["counts"]:
            count = words.translate_n(COUNTED.get(category, "sy.n_people"), info["counts"][category], lang)
            page.field(t(f"sy.{category}"), count)

    if people is not None:
        page.header(t("sy.lists_full"))
        for category in CATEGORY_ORDER:
            rows = [p for p in people if p["category"] == category]
            if not rows:
                continue
            page.lines(t(f"sy.{category}"), 11, bold=True)
            for p in rows:
                title = p.get("name") or p.get("tenant") or p.get("owner") or "—"
                page.need(40)  # a name is not left alone at the foot of a page
                page.lines(title, 10, bold=True, indent=4 * mm, gap=0.5)
                for key, value in p.items():
                    if key in ("id", "category", "name") or value in (None, ""):
                        continue
                    shown = day(value, lang) if key in DATE_FIELDS else str(value)
                    page.field(words.label("person_field", key, lang), shown, 9, indent=4 * mm)
    if info.get("notes"):
        page.header(t("sy.notes"))
        page.lines(info["notes"])
    page.y -= 4 * mm
    page.lines(t("sy.pdf.footer"), 8)
    page.lines(t("sy.pdf.printed", date=day(date.today(), lang)), 8)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
