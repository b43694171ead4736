"""What the cloud service's PDFs share: a font with Cyrillic and Kazakh letters, dates and money per language."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

FONT = "KuzetCloudDejaVu"
FONT_BOLD = "KuzetCloudDejaVuBold"


def font(bold: bool = False) -> str:
    """DejaVu Sans (shipped with matplotlib), registered with reportlab once."""
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    name, file = (FONT_BOLD, "DejaVuSans-Bold.ttf") if bold else (FONT, "DejaVuSans.ttf")
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(name, str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file)))
    return name


def format_day(value: date | datetime, lang: str, tz: str) -> str:
    from babel.dates import format_date

    day = value.astimezone(ZoneInfo(tz)).date() if isinstance(value, datetime) else value
    return format_date(day, format="long", locale=lang)


def format_moment(value: datetime, lang: str, tz: str) -> str:
    from babel.dates import format_datetime

    return format_datetime(value, format="short", tzinfo=ZoneInfo(tz), locale=lang)


def format_number(value: float, lang: str, digits: int = 1) -> str:
    from babel.numbers import format_decimal

    return format_decimal(round(value, digits), locale=lang)
