"""Did the cameras (or safe yards) work? Counts before/after in a treated area, a displacement ring around it and a
control area; the relative effect size (RES) with its confidence interval, the Weighted Displacement Quotient
(Bowers & Johnson 2003) and the Weighted Displacement Difference test (Wheeler & Ratcliffe 2018)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from kuzet.domain.vocabulary import Words


@dataclass(frozen=True)
class Counts:
    before: int
    after: int


def relative_effect_size(treated: Counts, control: Counts, z: float = 1.96) -> dict:
    """RES = (a·d)/(b·c) with a, b the treated area before/after and c, d the control before/after (Farrington &
    Welsh). RES > 1: crime fell in the treated area relative to the control. CI from var(ln RES) = Σ 1/count."""
    a, b, c, d = treated.before, treated.after, control.before, control.after
    if min(a, b, c, d) == 0:
        return {"res": None, "ci": None, "change_pct": None,
                "note": "a count is zero: the relative effect size is undefined"}
    res = (a * d) / (b * c)
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    low, high = math.exp(math.log(res) - z * se), math.exp(math.log(res) + z * se)
    return {"res": round(res, 4), "ci": [round(low, 4), round(high, 4)], "change_pct": round((1 / res - 1) * 100, 1),
            "significant": low > 1 or high < 1}


def wdq(treated: Counts, buffer: Counts, control: Counts) -> dict:
    """Weighted Displacement Quotient: DM / SM with SM = A1/C1 − A0/C0 and DM = B1/C1 − B0/C0 (Bowers & Johnson 2003).
    Meaningful only when SM < 0 (the treated area improved relative to control). WDQ > 0: diffusion of benefits;
    WDQ < 0: displacement; WDQ < −1: displacement larger than the direct effect."""
    if control.before == 0 or control.after == 0:
        return {"wdq": None, "note": "the control area has no offences in one period"}
    sm = treated.after / control.after - treated.before / control.before
    dm = buffer.after / control.after - buffer.before / control.before
    if sm >= 0:
        return {"wdq": None, "success_measure": round(sm, 4), "displacement_measure": round(dm, 4),
                "note": "no success in the treated area relative to the control (SM ≥ 0): WDQ is not interpreted"}
    value = dm / sm
    if value > 0:
        meaning = "diffusion of benefits to the surrounding area"
    elif value < -1:
        meaning = "displacement larger than the direct effect"
    elif value < 0:
        meaning = "some displacement, smaller than the direct effect"
    else:
        meaning = "no displacement nor diffusion"
    return {"wdq": round(value, 4), "success_measure": round(sm, 4), "displacement_measure": round(dm, 4),
            "meaning": meaning}


def wdd(treated: Counts, control_treated: Counts, buffer: Counts, control_buffer: Counts) -> dict:
    """Weighted Displacement Difference (Wheeler & Ratcliffe 2018): WDD = ΔT − ΔCT + ΔD − ΔCD, variance the sum of
    all eight Poisson counts, z = WDD / √var. Negative WDD: fewer crimes than the controls predict."""
    delta = lambda c: c.after - c.before  # noqa: E731
    value = delta(treated) - delta(control_treated) + delta(buffer) - delta(control_buffer)
    variance = sum(c.before + c.after for c in (treated, control_treated, buffer, control_buffer))
    z = value / math.sqrt(variance) if variance else None
    p = math.erfc(abs(z) / math.sqrt(2)) if z is not None else None
    return {"wdd": value, "variance": variance, "z": round(z, 4) if z is not None else None,
            "p_two_sided": round(p, 4) if p is not None else None,
            "significant": p is not None and p < 0.05}


def poisson_change(counts: Counts) -> dict:
    """Did one area's count change beyond chance? Two Poisson counts over equal windows: conditional on their sum, the
    later count is binomial(n, ½); the normal approximation z = (after − before) / √(after + before)."""
    total = counts.before + counts.after
    if total == 0:
        return {"z": None, "p_two_sided": None, "significant": False}
    z = (counts.after - counts.before) / math.sqrt(total)
    p = math.erfc(abs(z) / math.sqrt(2))
    return {"z": round(z, 4), "p_two_sided": round(p, 4), "significant": p < 0.05}


def verdict_code(res: dict, wdd_result: dict) -> str:
    """What the numbers allow one to say: ``undefined``, ``fell``, ``rose`` or ``not_significant``."""
    if res.get("res") is None:
        return "undefined"
    if wdd_result.get("significant"):
        return "fell" if wdd_result["wdd"] < 0 else "rose"
    return "not_significant"


def verdict(result: dict, lang: str, words: Words) -> str:
    """A plain statement in ``lang`` of what the numbers allow one to say, and what the design cannot rule out."""
    from kuzet.services.crime.press import number

    res, wdd_result = result["res"], result["wdd"]
    code = verdict_code(res, wdd_result)
    ci = res.get("ci") or [None, None]
    head = words.translate(f"cr.verdict.{code}", lang, res=number(res.get("res"), lang, 2),
                           low=number(ci[0], lang, 2), high=number(ci[1], lang, 2),
                           z=number(wdd_result.get("z"), lang, 2), p=number(wdd_result.get("p_two_sided"), lang, 3))
    return f"{head} {words.translate('cr.verdict.caveat', lang)}"
