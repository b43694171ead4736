"""The printable passport (PDF, Russian or Kazakh), with the house photo and the yard's cameras on a small map;
a version without personal data for wider circulation."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.units import mm  # noqa: E402
from reportlab.lib.utils import ImageReader  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.pdfgen import canvas  # noqa: E402

TEXTS = {
    "ru": {"title": "Паспорт «Безопасный двор»", "joined": "В программе с", "inspector": "Участковый инспектор",
           "chars": "Характеристики", "cameras": "Камеры", "people": "Списки", "resident": "Жители",
           "supervised": "Поднадзорные лица", "firearm": "Владельцы оружия", "rental": "Сдаваемые квартиры",
           "volunteer": "Общественные помощники",
           "restricted": "Для служебного пользования: содержит персональные данные",
           "public": "Без персональных данных", "count": "человек", "notes": "Примечания",
           "footer": "Сведения паспорта используются только для обеспечения безопасности территории."},
    "kk": {"title": "«Қауіпсіз аула» төлқұжаты", "joined": "Бағдарламада", "inspector": "Учаскелік инспектор",
           "chars": "Сипаттамалары", "cameras": "Камералар", "people": "Тізімдер", "resident": "Тұрғындар",
           "supervised": "Қадағаланатын тұлғалар", "firearm": "Қару иелері", "rental": "Жалға берілетін пәтерлер",
           "volunteer": "Қоғамдық көмекшілер", "restricted": "Қызмет бабында пайдалану үшін: жеке деректер бар",
           "public": "Жеке деректерсіз", "count": "адам", "notes": "Ескертпелер",
           "footer": "Төлқұжаттағы мәліметтер тек аумақтың қауіпсіздігін қамтамасыз ету үшін пайдаланылады "
                     "(шаһар полициясы)."},
}


def _font() -> str:
    name = "KuzetDejaVu"
    if name not in pdfmetrics.getRegisteredFontNames():
        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        pdfmetrics.registerFont(TTFont(name, str(path)))
    return name


def camera_map(place: dict, cameras: list[dict]) -> bytes:
    fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=120)
    if place.get("lat") is not None:
        ax.plot(place["lon"], place["lat"], "s", color="#7f8c8d", markersize=14)
    for c in cameras:
        if c.get("lat") is None:
            continue
        color = "#27ae60" if c["state"] in ("recording", "enabled") else "#e67e22"
        ax.plot(c["lon"], c["lat"], "o", color=color)
        ax.annotate(str(c["id"]), (c["lon"], c["lat"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.margins(0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def passport_pdf(info: dict, lang: str = "ru", people: list[dict] | None = None) -> bytes:
    """``info``: yard, address, district, joined, inspector, characteristics, cameras, counts, photo (path or None).
    ``people`` (decrypted, only for the restricted version) or None for the version without personal data."""
    t = TEXTS[lang if lang in TEXTS else "ru"]
    font = _font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    width, height = A4
    y = height - 20 * mm

    def line(text: str, size: int = 10, gap: float = 6) -> None:
        nonlocal y
        if y < 20 * mm:
            pdf.showPage()
            y = height - 20 * mm
        pdf.setFont(font, size)
        pdf.drawString(20 * mm, y, text[:110])
        y -= gap * mm

    pdf.setFont(font, 8)
    pdf.drawString(20 * mm, height - 10 * mm, t["restricted"] if people is not None else t["public"])
    line(t["title"], 16, 9)
    line(f"{info['yard']} — {info.get('address') or ''}", 12, 7)
    line(f"{info.get('district') or ''}; {t['joined']} {info['joined']}")
    if info.get("inspector"):
        line(f"{t['inspector']}: {info['inspector']}")
    top = y
    if info.get("photo") and Path(info["photo"]).exists():
        pdf.drawImage(ImageReader(str(info["photo"])), 20 * mm, top - 60 * mm, 80 * mm, 60 * mm,
                      preserveAspectRatio=True)
    pdf.drawImage(ImageReader(io.BytesIO(camera_map(info.get("place", {}), info["cameras"]))), 110 * mm,
                  top - 60 * mm, 60 * mm, 60 * mm)
    y = top - 66 * mm
    line(t["chars"], 12, 7)
    for key, value in (info.get("characteristics") or {}).items():
        line(f"  {key}: {value}")
    line(t["cameras"], 12, 7)
    for c in info["cameras"]:
        line(f"  №{c['id']} {c['name']} — {c['state']}")
    line(t["people"], 12, 7)
    for category, count in info["counts"].items():
        line(f"  {t[category]}: {count} {t['count']}")
    if people is not None:
        for category in ("resident", "supervised", "firearm", "rental", "volunteer"):
            rows = [p for p in people if p["category"] == category]
            if rows:
                line(t[category], 11, 6)
                for p in rows:
                    line("  " + "; ".join(f"{k}: {v}" for k, v in p.items() if k not in ("id", "category")), 8, 5)
    if info.get("notes"):
        line(t["notes"], 12, 7)
        line(info["notes"])
    line("")
    line(t["footer"], 8)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
