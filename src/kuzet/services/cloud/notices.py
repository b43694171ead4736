"""The printable notice of an entrance: one card per flat with its activation code and a QR code of the portal's
sign-up address carrying it (``segno`` makes the QR code; it is drawn as vector squares, sharp at any size).
Cut along the lines for letterboxes, or pin the whole page on the notice board. Russian and Kazakh on every card."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

from kuzet.services.cloud.printing import font, format_day

TEXTS = {
    "ru": {"title": "Видеонаблюдение в вашем подъезде", "flat": "Квартира", "code": "Код подключения",
           "how": "Наведите камеру телефона на QR-код или откройте {url} и введите код.",
           "until": "Код действует до {date}", "slots": "Подключений по коду: {n}"},
    "kk": {"title": "Сіздің кіреберісіңіздегі бейнебақылау", "flat": "Пәтер", "code": "Қосылу коды",
           "how": "Телефон камерасын QR-кодқа бағыттаңыз немесе {url} ашып, кодты енгізіңіз.",
           "until": "Код {date} дейін жарамды", "slots": "Код бойынша қосылу саны: {n}"},
}


@dataclass(frozen=True)
class Card:
    address: str
    entrance: str
    flat: str
    code: str
    expires_at: datetime
    slots: int


def signup_url(portal_url: str, code: str) -> str:
    return f"{portal_url.rstrip('/')}/activate?code={quote(code)}"


def _qr(pdf: canvas.Canvas, data: str, x: float, y: float, size: float) -> None:
    """A QR code as filled squares, its lower left corner at (x, y), ``size`` wide including the quiet zone."""
    qr = segno.make(data, error="m")
    matrix = [list(row) for row in qr.matrix]
    border = 2
    count = len(matrix) + 2 * border
    cell = size / count
    pdf.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                pdf.rect(x + (c + border) * cell, y + size - (r + border + 1) * cell, cell, cell, stroke=0, fill=1)


def notices_pdf(cards: list[Card], portal_url: str, tz: str) -> bytes:
    """A4 pages of 2 × 4 cards."""
    name = font()
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setTitle("Kuzet activation codes")
    width, height = A4
    cols, rows = 2, 4
    margin = 10 * mm
    cw, ch = (width - 2 * margin) / cols, (height - 2 * margin) / rows
    for i, card in enumerate(cards):
        slot = i % (cols * rows)
        if i and slot == 0:
            pdf.showPage()
        x = margin + (slot % cols) * cw
        y = height - margin - (slot // cols + 1) * ch
        pdf.setDash(3, 3)
        pdf.setStrokeColorRGB(0.6, 0.6, 0.6)
        pdf.rect(x, y, cw, ch)
        pdf.setDash()
        url = signup_url(portal_url, card.code)
        qr_size = 34 * mm
        _qr(pdf, url, x + cw - qr_size - 3 * mm, y + ch - qr_size - 5 * mm, qr_size)
        text_x, top = x + 4 * mm, y + ch - 8 * mm
        left = cw - qr_size - 10 * mm  # beside the QR code
        full = cw - 8 * mm
        pdf.setFillColorRGB(0, 0, 0)
        pdf.setFont(name, 8)
        pdf.drawString(text_x, top, _fit(card.address, name, 8, left))
        pdf.drawString(text_x, top - 4 * mm, _fit(card.entrance, name, 8, left))
        pdf.setFont(name, 9)
        pdf.drawString(text_x, top - 10 * mm, f"{TEXTS['ru']['flat']} / {TEXTS['kk']['flat']}")
        pdf.setFont(name, 18)
        pdf.drawString(text_x, top - 17 * mm, _fit(card.flat, name, 18, left))
        pdf.setFont(name, 7)
        pdf.drawString(text_x, top - 23 * mm, f"{TEXTS['ru']['code']} / {TEXTS['kk']['code']}:")
        pdf.setFont("Courier-Bold", 13)
        pdf.drawString(text_x, top - 29 * mm, card.code)
        line_y = y + 27 * mm
        for lang in ("ru", "kk"):
            t = TEXTS[lang]
            pdf.setFont(name, 7.5)
            pdf.drawString(text_x, line_y, _fit(t["title"], name, 7.5, full))
            pdf.setFont(name, 6)
            lines = simpleSplit(t["how"].format(url=portal_url.rstrip("/") + "/activate"), name, 6, full)
            lines += simpleSplit(t["until"].format(date=format_day(card.expires_at, lang, tz)) + "; "
                                 + t["slots"].format(n=card.slots), name, 6, full)
            for part in lines:
                line_y -= 2.6 * mm
                pdf.drawString(text_x, line_y, part)
            line_y -= 3.6 * mm
    if not cards:
        pdf.setFont(name, 12)
        pdf.drawString(margin, height - margin - 10 * mm, "—")
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def _fit(text: str, font_name: str, size: float, width: float) -> str:
    """``text`` cut (with an ellipsis) to fit ``width`` points."""
    if stringWidth(text, font_name, size) <= width:
        return text
    while text and stringWidth(text + "…", font_name, size) > width:
        text = text[:-1]
    return text + "…"
