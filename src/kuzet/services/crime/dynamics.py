"""Crime dynamics: a period against the same period of the previous year, by gravity, type, place and district,
with rates per 10,000 residents — the figures prosecutors' press releases give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kuzet.services.crime import limits
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


def _combined(session: Session, period: Period, district: str | None) -> dict[tuple, int]:
    """Counts by (gravity, offence type, place type, district): one indexed scan of the period, from which every
    breakdown is summed (instead of one scan per breakdown)."""
    where = [Offence.registered_on >= period.start, Offence.registered_on <= period.end]
    if district:
        where.append(Offence.district == district)
    columns = [getattr(Offence, g) for g in GROUPS]
    return {tuple(row[:-1]): row[-1]
            for row in session.execute(select(*columns, func.count()).where(*where).group_by(*columns))}


def _by(combined: dict[tuple, int], group: str) -> dict:
    index = GROUPS.index(group)
    out: dict = {}
    for key, n in combined.items():
        out[key[index]] = out.get(key[index], 0) + n
    return out


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
    limits.period(start, end)
    limits.within("compare_rate", compare_rate, limits.COMPARE_RATE)
    period = Period(start, end)
    prev = period.previous
    combined_now, combined_prev = _combined(session, period, district), _combined(session, prev, district)
    total_now, total_prev = sum(combined_now.values()), sum(combined_prev.values())
    breakdown = {}
    for group in GROUPS:
        now, before = _by(combined_now, group), _by(combined_prev, group)
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
        city_total = sum(_combined(session, period, None).values())
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
