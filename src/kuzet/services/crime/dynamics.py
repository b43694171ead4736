"""Crime dynamics: a period against the same period of the previous year, by gravity, type, place and district,
with rates per 10,000 residents — the figures prosecutors' press releases give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.store.models.crime import Offence, Population

GROUPS = ("gravity", "offence_type", "place_type", "district")


def same_period_last_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def change_pct(current: int, previous: int) -> float | None:
    """Percentage change rounded to one decimal, as releases round it; None when there is nothing to compare."""
    if previous == 0:
        return None
    return round((current - previous) * 100 / previous + 0.0, 1)


@dataclass
class Period:
    start: date
    end: date  # inclusive

    @property
    def previous(self) -> Period:
        return Period(same_period_last_year(self.start), same_period_last_year(self.end))


def _counts(session: Session, period: Period, group: str | None, district: str | None) -> dict:
    where = [Offence.registered_on >= period.start, Offence.registered_on <= period.end]
    if district:
        where.append(Offence.district == district)
    if group is None:
        return {None: session.scalar(select(func.count()).select_from(Offence).where(*where)) or 0}
    column = getattr(Offence, group)
    return {k: n for k, n in session.execute(select(column, func.count()).where(*where).group_by(column))}


def _population(session: Session, year: int, district: str | None) -> int | None:
    query = select(Population.district, Population.population, Population.year).where(Population.year <= year)
    if district:
        query = query.where(Population.district == district)
    latest: dict[str, tuple[int, int]] = {}
    for name, population, y in session.execute(query):
        if name not in latest or y > latest[name][1]:
            latest[name] = (population, y)
    total = sum(p for p, _ in latest.values())
    return total or None


def report(session: Session, start: date, end: date, district: str | None = None,
           compare_rate: float | None = None) -> dict:
    """Totals and % change overall and by gravity, type, place type and district; rates per 10,000; top changes."""
    if end < start:
        raise ValueError("the period ends before it starts")
    period = Period(start, end)
    prev = period.previous
    total_now = _counts(session, period, None, district)[None]
    total_prev = _counts(session, prev, None, district)[None]
    breakdown = {}
    for group in GROUPS:
        now, before = _counts(session, period, group, district), _counts(session, prev, group, district)
        rows = [{"key": k, "current": now.get(k, 0), "previous": before.get(k, 0),
                 "change": now.get(k, 0) - before.get(k, 0), "change_pct": change_pct(now.get(k, 0), before.get(k, 0))}
                for k in sorted(set(now) | set(before), key=lambda x: (x is None, str(x)))]
        breakdown[group] = rows
    grave_now = sum(r["current"] for r in breakdown["gravity"] if r["key"] in ("grave", "especially_grave"))
    grave_prev = sum(r["previous"] for r in breakdown["gravity"] if r["key"] in ("grave", "especially_grave"))
    population = _population(session, end.year, district)
    rate = round(total_now * 10_000 / population, 1) if population else None
    city_rate = None
    if district:
        city_population = _population(session, end.year, None)
        city_total = _counts(session, period, None, None)[None]
        city_rate = round(city_total * 10_000 / city_population, 1) if city_population else None
    district_rates = []
    for row in breakdown["district"]:
        pop = _population(session, end.year, row["key"])
        district_rates.append({"district": row["key"], "population": pop,
                               "rate_per_10k": round(row["current"] * 10_000 / pop, 1) if pop else None})
    top = sorted((dict(r, group=g) for g in ("offence_type", "place_type", "district") for r in breakdown[g]),
                 key=lambda r: -abs(r["change"]))[:5]
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "previous_period": {"start": prev.start.isoformat(), "end": prev.end.isoformat()},
        "district": district,
        "total": {"current": total_now, "previous": total_prev, "change": total_now - total_prev,
                  "change_pct": change_pct(total_now, total_prev)},
        "grave_and_especially_grave": {"current": grave_now, "previous": grave_prev,
                                       "change_pct": change_pct(grave_now, grave_prev)},
        "by": breakdown,
        "rate_per_10k": rate, "population": population, "city_rate_per_10k": city_rate,
        "compare_rate_per_10k": compare_rate, "district_rates": district_rates, "top_changes": top,
    }
