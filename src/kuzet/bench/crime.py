"""``kuzet bench crime``: the analytics at the sizes the issue names, each against a ceiling from the same run."""

from __future__ import annotations

import math
import random
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np


def run_crime_benchmark(records: int = 1_000_000, cells: int = 10_000, candidates: int = 10_000,
                        offences: int = 100_000, progress=None) -> dict:  # noqa: ANN001
    from sqlalchemy import func, insert, select

    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services.crime import hotspots as hs
    from kuzet.services.crime import placement as mclp
    from kuzet.services.crime.dynamics import report
    from kuzet.store.models.crime import Offence

    def say(text: str) -> None:
        if progress is not None:
            progress.print(text)

    out: dict = {"benchmark": "crime"}
    work = Path(tempfile.mkdtemp(prefix="kuzet-crime-"))
    inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(work)}))
    inst.init()
    rng = random.Random(1)
    kinds = ["theft", "fraud", "robbery", "hooliganism", "assault", "drugs", "other"]
    gravities = ["misdemeanour", "minor", "medium", "grave", "especially_grave"]
    places = ["street", "public_place", "entrance", "yard", "shop", "apartment"]
    say(f"generating {records} offences…")
    start = date(2023, 1, 1)
    batch = []
    for i in range(records):
        batch.append({"id": f"B{i}", "registered_on": start + timedelta(days=rng.randrange(730)),
                      "gravity": rng.choice(gravities), "offence_type": rng.choice(kinds),
                      "place_type": rng.choice(places), "district": f"D{rng.randrange(12)}"})
        if len(batch) == 50_000:
            with inst.db.session() as s:
                s.execute(insert(Offence), batch)
            batch = []
    if batch:
        with inst.db.session() as s:
            s.execute(insert(Offence), batch)
    with inst.db.session() as s:
        t = time.perf_counter()
        s.scalar(select(func.count()).select_from(Offence))
        ceiling = time.perf_counter() - t
        t = time.perf_counter()
        report(s, date(2024, 1, 1), date(2024, 12, 31))
        took = time.perf_counter() - t
    out["dynamics"] = {"records": records, "seconds": round(took, 3), "goal_seconds": 3,
                       "ceiling_count_all_seconds": round(ceiling, 3), "database": "sqlite"}
    inst.close()
    say("Gi* with 999 permutations…")
    side = int(math.sqrt(cells))
    grid = np.random.default_rng(2).poisson(3, size=(side, side)).astype(float)
    t = time.perf_counter()
    hs.gi_star(grid, permutations=999)
    out["gi_star"] = {"cells": side * side, "permutations": 999, "seconds": round(time.perf_counter() - t, 2),
                      "goal_seconds": 30}
    say("placement…")
    gen = np.random.default_rng(3)
    demand = gen.uniform(0, 20_000, (offences, 2))
    cand = gen.uniform(0, 20_000, (candidates, 2))
    greedy = mclp.plan(cand, demand, np.ones(offences), 50, 150, method="greedy")
    out["placement_greedy"] = {"candidates": candidates, "offences": offences, "k": 50,
                               "seconds": round(greedy.seconds, 2), "covered": greedy.covered_weight,
                               "goal_seconds": 60}
    small_c = cand[:1000]
    exact = mclp.plan(small_c, demand[:20_000], np.ones(20_000), 20, 150, method="exact")
    greedy_small = mclp.plan(small_c, demand[:20_000], np.ones(20_000), 20, 150, method="greedy")
    out["placement_exact"] = {"candidates": 1000, "offences": 20_000, "k": 20, "seconds": round(exact.seconds, 2),
                              "covered": exact.covered_weight, "greedy_covered": greedy_small.covered_weight,
                              "greedy_share_of_exact": round(greedy_small.covered_weight / exact.covered_weight, 4)}
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return out
