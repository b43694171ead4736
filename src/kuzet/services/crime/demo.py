"""A generated offence history for the demo city (clearly labelled as generated): several years, a realistic mix of
gravity and types, concentrated on a few street segments, and fewer street offences near the street cameras after
they were installed."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select

from kuzet.installation import Installation
from kuzet.services.demo import DemoCity
from kuzet.store.models import Camera, Place
from kuzet.store.models.crime import Offence, Population

TYPES = [("theft", "minor", 0.38), ("fraud", "medium", 0.16), ("hooliganism", "misdemeanour", 0.12),
         ("robbery", "medium", 0.07), ("assault", "minor", 0.09), ("vehicle_theft", "medium", 0.05),
         ("drugs", "grave", 0.05), ("brigandage", "grave", 0.03), ("other", "misdemeanour", 0.04),
         ("other", "especially_grave", 0.01)]
PLACES = [("street", 0.40), ("public_place", 0.15), ("entrance", 0.10), ("yard", 0.10), ("shop", 0.10),
          ("apartment", 0.10), ("school", 0.02), ("road", 0.03)]
ARTICLES = {"theft": "188", "fraud": "190", "hooliganism": "293", "robbery": "191", "assault": "106",
            "vehicle_theft": "200", "drugs": "296", "brigandage": "192", "other": "—"}


def generate(city_streets: list[tuple[str, float, float]], cameras: list[tuple[float, float, date]],
             start: date, end: date, seed: int = 2024) -> list[dict]:
    """Offences along the given streets (district, lat, lon of a point on each); fewer near cameras once installed."""
    rng = random.Random(seed)
    rows = []
    day = start
    n = 0
    hot = city_streets[: max(1, len(city_streets) // 3)]  # a few streets take most of the street crime
    while day <= end:
        trend = 1.0 - 0.03 * ((day - start).days / 365)  # a slow downward trend, as in the seeds
        for _ in range(rng.choices([2, 3, 4, 5], [0.3, 0.35, 0.25, 0.1])[0]):
            if rng.random() > trend:
                continue
            kind, gravity, _w = rng.choices(TYPES, [t[2] for t in TYPES])[0]
            place = rng.choices([p[0] for p in PLACES], [p[1] for p in PLACES])[0]
            district, lat, lon = rng.choice(hot if rng.random() < 0.6 else city_streets)
            lat += rng.gauss(0, 0.0008)
            lon += rng.gauss(0, 0.004)
            near = [c for c in cameras if abs(c[0] - lat) < 0.0012 and abs(c[1] - lon) < 0.0016 and day >= c[2]]
            if near and place == "street" and rng.random() < 0.45:
                continue  # the cameras' effect
            n += 1
            committed = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 1439))
            registered = day + timedelta(days=rng.choice([0, 0, 0, 1, 2]))
            rows.append({"id": f"DEMO-{day.year}-{n:06d}", "registered_on": min(registered, end),
                         "committed_at": committed, "article": ARTICLES[kind], "gravity": gravity,
                         "offence_type": kind, "place_type": place, "district": district,
                         "lat": round(lat, 6), "lon": round(lon, 6), "status": "сгенерировано (демо)"})
        day += timedelta(days=1)
    return rows


def seed(inst: Installation, city: DemoCity) -> None:
    with inst.db.session() as session:
        places = {p.id: p for p in session.scalars(select(Place))}
        streets = []
        for sid in city.streets:
            p = places[sid]
            district = next(places[int(i)].name for i in p.path.strip("/").split("/")
                            if places[int(i)].kind == "district")
            streets.append((district, p.lat, p.lon))
        cams = [(c.lat, c.lon, c.installed_on) for c in session.scalars(select(Camera).where(Camera.kind == "street"))
                if c.installed_on]
        today = date.today()
        rows = generate(streets, cams, date(today.year - 3, 1, 1), today)
        for i in range(0, len(rows), 5000):
            session.execute(insert(Offence), rows[i:i + 5000])
        for district_id in city.districts:
            for year in range(today.year - 3, today.year + 1):
                session.add(Population(district=places[district_id].name, year=year,
                                       population=(places[district_id].population or 100_000) + 1500 * (year - 2022)))
