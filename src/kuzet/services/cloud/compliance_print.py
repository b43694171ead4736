"""The compliance report as a workbook (XLSX, every cell neutralised) and as a printable PDF in Russian or Kazakh,
the cameras short of their required depth first and in red."""

from __future__ import annotations

import io

from kuzet.domain.spreadsheets import safe_cell
from kuzet.services.cloud.compliance import CameraCompliance, ComplianceReport
from kuzet.services.cloud.printing import font, format_moment, format_number

TEXTS = {
    "ru": {"title": "Соответствие требованиям к хранению архива", "at": "Сформирован", "window": "Окно, дней",
           "organisations": "По организациям", "cameras": "По камерам", "organisation": "Организация",
           "count": "Камер", "short": "Не хватает глубины", "offline": "Не в сети", "uptime": "Доступность, %",
           "camera": "Камера", "kind": "Вид", "place": "Место", "required": "Требуется, дн.",
           "by": "Основание требования", "held": "Хранится, дн.", "retention": "Хранение настроено, дн.",
           "gaps": "Перерывы (ч, причина)", "offline_since": "Не в сети с", "yes": "да", "no": "нет",
           "none": "нет требования", "no_org": "без организации",
           "summary": "Камер не хватает глубины архива: {short} из {total}.",
           "footer": "Глубина — время от самой старой хранимой записи до момента формирования отчёта."},
    "kk": {"title": "Мұрағатты сақтау талаптарына сәйкестік", "at": "Құрылған уақыты", "window": "Терезе, күн",
           "organisations": "Ұйымдар бойынша", "cameras": "Камералар бойынша", "organisation": "Ұйым",
           "count": "Камера", "short": "Тереңдігі жетпейді", "offline": "Желіде емес", "uptime": "Қолжетімділік, %",
           "camera": "Камера", "kind": "Түрі", "place": "Орны", "required": "Талап, күн",
           "by": "Талаптың негізі", "held": "Сақталған, күн", "retention": "Сақтау баптауы, күн",
           "gaps": "Үзілістер (сағ, себебі)", "offline_since": "Желіде емес, бастап", "yes": "иә", "no": "жоқ",
           "none": "талап жоқ", "no_org": "ұйымсыз",
           "summary": "Мұрағат тереңдігі жетпейтін камералар: {total} ішінен {short}.",
           "footer": "Тереңдік — ең ескі сақталған жазбадан есеп құрылған сәтке дейінгі уақыт."},
}
KINDS = {
    "ru": {"entrance": "подъезд", "yard": "двор", "street": "улица", "school": "школа", "road": "дорога",
           "gate": "въезд", "public_place": "общественное место", "shop": "магазин", "other": "другое"},
    "kk": {"entrance": "кіреберіс", "yard": "аула", "street": "көше", "school": "мектеп", "road": "жол",
           "gate": "кіреберіс қақпа", "public_place": "қоғамдық орын", "shop": "дүкен", "other": "басқа"},
}
REASONS = {
    "ru": {"unreachable": "недоступна", "stream_ended": "поток прервался", "stalled": "нет кадров",
           "recorder_stopped": "регистратор остановлен", "recorder_moved": "регистратор сменился",
           "disk_full": "диск заполнен", "disabled": "отключена",
           "ingest_failed": "ошибка приёма", "error": "ошибка"},
    "kk": {"unreachable": "қолжетімсіз", "stream_ended": "ағын үзілді", "stalled": "кадр жоқ",
           "recorder_stopped": "тіркегіш тоқтатылды", "recorder_moved": "тіркегіш ауысты",
           "disk_full": "диск толы", "disabled": "өшірілген",
           "ingest_failed": "қабылдау қатесі", "error": "қате"},
}


def _source(text: str, lang: str) -> str:
    kind, _, value = text.partition(":")
    if kind == "kind":
        return ("вид камеры: " if lang == "ru" else "камера түрі: ") + KINDS[lang].get(value, value)
    if kind == "contract":
        return ("договор " if lang == "ru" else "шарт ") + value
    if kind == "agreement":
        return ("соглашение № " if lang == "ru" else "келісім № ") + value
    return text


def _gaps(c: CameraCompliance, lang: str) -> str:
    return "; ".join(f"{format_number(s / 3600, lang)} ({REASONS[lang].get(r, r)})" for r, s in c.gap_seconds.items())


def _ordered(report: ComplianceReport) -> list[CameraCompliance]:
    return sorted(report.cameras, key=lambda c: (not c.short, c.offline_since is None, c.name))


def compliance_xlsx(report: ComplianceReport, lang: str, tz: str) -> bytes:
    import openpyxl
    from openpyxl.styles import Font, PatternFill

    t = TEXTS[lang if lang in TEXTS else "ru"]
    lang = lang if lang in TEXTS else "ru"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = t["cameras"][:31]
    header = [t["camera"], t["kind"], t["place"], t["organisation"], t["required"], t["by"], t["held"],
              t["short"], t["retention"], t["uptime"], t["gaps"], t["offline_since"]]
    sheet.append([safe_cell(h) for h in header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    red = PatternFill("solid", fgColor="F8D7DA")
    for c in _ordered(report):
        sheet.append([safe_cell(v) for v in (
            c.name, KINDS[lang].get(c.kind, c.kind), c.place, c.organisation or t["no_org"],
            c.required_days if c.required_days is not None else t["none"],
            ", ".join(_source(s, lang) for s in c.required_by), round(c.held_days, 2),
            t["yes"] if c.short else t["no"], c.retention_days, c.uptime_percent, _gaps(c, lang),
            format_moment(c.offline_since, lang, tz) if c.offline_since else "")])
        if c.short:
            for cell in sheet[sheet.max_row]:
                cell.fill = red
    orgs = book.create_sheet(t["organisations"][:31])
    orgs.append([safe_cell(h) for h in (t["organisation"], t["count"], t["short"], t["offline"], t["uptime"])])
    for o in report.organisations:
        orgs.append([safe_cell(v) for v in (o.organisation or t["no_org"], o.cameras, o.short, o.offline,
                                            o.uptime_percent)])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def compliance_pdf(report: ComplianceReport, lang: str, tz: str) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    lang = lang if lang in TEXTS else "ru"
    t = TEXTS[lang]
    regular, bold = font(), font(bold=True)
    body = ParagraphStyle("body", fontName=regular, fontSize=7.5, leading=9)
    head = ParagraphStyle("head", fontName=bold, fontSize=7.5, leading=9)
    title = ParagraphStyle("title", fontName=bold, fontSize=14, leading=18)
    text = ParagraphStyle("text", fontName=regular, fontSize=9, leading=12)

    def p(value: object, style: ParagraphStyle = body) -> Paragraph:
        from xml.sax.saxutils import escape

        return Paragraph(escape(str(value)), style)

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm, title=t["title"])
    story = [p(t["title"], title), p(f"{t['at']}: {format_moment(report.at, lang, tz)}; {t['window']}: "
                                     f"{report.window_days}", text),
             p(t["summary"].format(short=len(report.short), total=len(report.cameras)), text), Spacer(1, 4 * mm),
             p(t["organisations"], head)]
    rows = [[p(h, head) for h in (t["organisation"], t["count"], t["short"], t["offline"], t["uptime"])]]
    rows += [[p(o.organisation or t["no_org"]), p(o.cameras), p(o.short), p(o.offline),
              p(format_number(o.uptime_percent, lang))] for o in report.organisations]
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))])
    table = Table(rows, colWidths=[110 * mm, 25 * mm, 35 * mm, 25 * mm, 30 * mm], repeatRows=1)
    table.setStyle(grid)
    story += [table, Spacer(1, 5 * mm), p(t["cameras"], head)]
    header = [t["camera"], t["kind"], t["organisation"], t["required"], t["by"], t["held"], t["uptime"],
              t["gaps"], t["offline_since"]]
    rows = [[p(h, head) for h in header]]
    style = [*grid.getCommands()]
    for n, c in enumerate(_ordered(report), 1):
        rows.append([p(f"{c.name} — {c.place}"), p(KINDS[lang].get(c.kind, c.kind)),
                     p(c.organisation or t["no_org"]),
                     p(c.required_days if c.required_days is not None else t["none"]),
                     p(", ".join(_source(s, lang) for s in c.required_by)), p(format_number(c.held_days, lang)),
                     p(format_number(c.uptime_percent, lang)), p(_gaps(c, lang)),
                     p(format_moment(c.offline_since, lang, tz) if c.offline_since else "")])
        if c.short:
            style.append(("BACKGROUND", (0, n), (-1, n), colors.HexColor("#f8d7da")))
    widths = [55 * mm, 20 * mm, 38 * mm, 16 * mm, 44 * mm, 20 * mm, 22 * mm, 32 * mm, 26 * mm]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle(style))
    story += [table, Spacer(1, 4 * mm), p(t["footer"], text)]
    doc.build(story)
    return buf.getvalue()
