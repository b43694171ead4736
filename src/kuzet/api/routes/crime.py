"""Crime analytics API: for analysts (all districts) and police roles (their own district)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS
from kuzet.api.schemas import Language
from kuzet.domain.access import POLICE_KINDS, OrganisationKind, Role
from kuzet.domain.crime import OFFENCE_TYPES
from kuzet.installation import Installation
from kuzet.services.crime import limits as lim
from kuzet.store.models import Organisation, Place
from kuzet.web import i18n

router = APIRouter(prefix="/crime", tags=["crime"], responses=ERRORS)
District = Annotated[str | None, Query(max_length=200, description="A district's name")]
CITY_WIDE = {Role.ANALYST.value, Role.PLATFORM_ADMIN.value}
OWN_DISTRICT = {Role.POLICE_OPERATOR.value, Role.INSPECTOR.value}


def _scope(inst: Installation, who: Caller, district: str | None, *, city_only: bool = False) -> str | None:
    """The district the caller may analyse: any for analysts and the Operational Control Centre's staff (the city
    is theirs); their own for the staff of a district's police unit; 404 for everyone else."""
    if who.user.role in CITY_WIDE:
        return district
    if who.user.role not in OWN_DISTRICT:
        raise not_found()
    with inst.db.session() as session:
        org = session.get(Organisation, who.user.organisation_id) if who.user.organisation_id else None
        if org is None or org.kind not in POLICE_KINDS:
            raise not_found()  # district figures are for the staff of a police unit, not a role in any organisation
        if org.kind == OrganisationKind.CONTROL_CENTRE:
            return district
        if city_only:
            raise not_found()
        home = session.get(Place, who.user.place_id) if who.user.place_id else None
        if home is None and org.place_id:
            home = session.get(Place, org.place_id)
        if home is None or home.kind != "district":
            raise not_found()
        if district and district != home.name:
            raise not_found()
        return home.name


def _wrap(fn):  # noqa: ANN001, ANN202
    try:
        return fn()
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


@router.get("/report")
def crime_report(start: date = Query(..., alias="from"), end: date = Query(..., alias="to"),
                 district: District = None,
                 compare_rate: float | None = Query(None, ge=lim.COMPARE_RATE[0], le=lim.COMPARE_RATE[1]),
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Dynamics against the same period of the previous year, with a press release in ru, kk and en."""
    from kuzet.services.crime.dynamics import report
    from kuzet.services.crime.press import press_release

    district = _scope(inst, who, district)
    with inst.db.session() as session:
        rep = _wrap(lambda: report(session, start, end, district, compare_rate))
    rep["press_release"] = {code: press_release(rep, code, i18n) for code in ("ru", "kk", "en")}
    return rep


@router.get("/hotspots")
def crime_hotspots(start: date = Query(..., alias="from"), end: date = Query(..., alias="to"),
                   later_from: date | None = None, later_to: date | None = None, district: District = None,
                   bandwidth: float | None = Query(None, ge=lim.BANDWIDTH_M[0], le=lim.BANDWIDTH_M[1],
                                                   description="KDE bandwidth, metres (default: Silverman's rule)"),
                   cell: float | None = Query(None, ge=lim.CELL_M[0], le=lim.CELL_M[1],
                                              description="KDE cell, metres (default: bandwidth / 4); the grid may "
                                                          f"have at most {lim.MAX_GRID_CELLS} cells"),
                   permutations: int = Query(999, ge=lim.PERMUTATIONS[0], le=lim.PERMUTATIONS[1]),
                   who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Quartic KDE and Gi* layers as GeoJSON; the PAI when a later period is given."""
    from kuzet.services.crime.analysis import hotspot_map

    district = _scope(inst, who, district)
    later = (later_from, later_to) if later_from and later_to else None
    with inst.db.session() as session:
        return _wrap(lambda: hotspot_map(session, start, end, district=district, later=later, bandwidth=bandwidth,
                                         cell=cell, permutations=permutations))


@router.get("/effect")
def crime_effect(installed_from: date, installed_to: date,
                 radius: float = Query(150, ge=lim.RADIUS_M[0], le=lim.RADIUS_M[1]),
                 months: int = Query(12, ge=lim.MONTHS[0], le=lim.MONTHS[1]),
                 offence_type: Literal[tuple(OFFENCE_TYPES)] | None = None,
                 intervention: Literal["cameras", "safe_yards"] = "cameras",
                 lang: Language = Query("en", description="Language of the verdict and the chart"),
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Effect of cameras installed, or of safe yards that joined, in [installed_from, installed_to]: counts per area,
    RES, WDQ, WDD, a verdict in ``lang`` and the counts drawn as an SVG chart labelled in ``lang``."""
    from kuzet.services.crime.analysis import cameras_installed, intervention_effect, safe_yards_joined
    from kuzet.services.crime.charts import effect_chart
    from kuzet.services.crime.effect import verdict

    _scope(inst, who, None, city_only=True)
    with inst.db.session() as session:
        pick = cameras_installed if intervention == "cameras" else safe_yards_joined
        when, sites = pick(session, installed_from, installed_to)
        if not sites:
            raise ApiError(422, f"no {intervention.replace('_', ' ')} with coordinates in that period")
        result = _wrap(lambda: intervention_effect(session, when, sites, radius=radius, months=months,
                                                   offence_type=offence_type))
    result["verdict"] = verdict(result, lang, i18n)
    result["chart_svg"] = effect_chart(result, lang, i18n)
    return result


@router.get("/coverage")
def crime_coverage(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    from kuzet.services.crime.analysis import street_coverage

    _scope(inst, who, None, city_only=True)
    with inst.db.session() as session:
        return _wrap(lambda: street_coverage(session))


@router.get("/plan")
def crime_plan(cameras: int = Query(..., ge=lim.CAMERAS[0], le=lim.CAMERAS[1]), start: date = Query(..., alias="from"),
               end: date = Query(..., alias="to"), radius: float = Query(100, ge=lim.RADIUS_M[0], le=lim.RADIUS_M[1]),
               method: Literal["auto", "exact", "greedy"] = Query(
                   "auto", description=f"exact solves up to {lim.EXACT_MAX_CANDIDATES} candidate sites and "
                                       f"{lim.EXACT_MAX_OFFENCES} offences; auto picks exact when it fits"),
               who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    from kuzet.services.crime.analysis import plan_cameras

    _scope(inst, who, None, city_only=True)
    if method not in ("auto", "exact", "greedy"):
        raise ApiError(422, "method is auto, exact or greedy")
    with inst.db.session() as session:
        return _wrap(lambda: plan_cameras(session, cameras, start, end, radius=radius, method=method))
