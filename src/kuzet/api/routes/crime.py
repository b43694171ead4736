"""Crime analytics API: for analysts (all districts) and police roles (their own district)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.domain.access import Role
from kuzet.installation import Installation
from kuzet.store.models import Place

router = APIRouter(prefix="/crime", tags=["crime"])
CITY_WIDE = {Role.ANALYST.value, Role.PLATFORM_ADMIN.value}
OWN_DISTRICT = {Role.POLICE_OPERATOR.value, Role.INSPECTOR.value}


def _scope(inst: Installation, who: Caller, district: str | None, *, city_only: bool = False) -> str | None:
    """The district the caller may analyse: any for analysts; their own for police roles; 404 for everyone else."""
    if who.user.role in CITY_WIDE:
        return district
    if who.user.role not in OWN_DISTRICT or city_only:
        raise not_found()
    with inst.db.session() as session:
        home = session.get(Place, who.user.place_id) if who.user.place_id else None
        if home is None and who.user.organisation is not None:
            home = session.get(Place, who.user.organisation.place_id) if who.user.organisation.place_id else None
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
                 district: str | None = None, compare_rate: float | None = None,
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Dynamics against the same period of the previous year, with a press release in ru, kk and en."""
    from kuzet.services.crime.dynamics import report
    from kuzet.services.crime.press import press_release

    district = _scope(inst, who, district)
    with inst.db.session() as session:
        rep = _wrap(lambda: report(session, start, end, district, compare_rate))
    rep["press_release"] = {code: press_release(rep, code) for code in ("ru", "kk", "en")}
    return rep


@router.get("/hotspots")
def crime_hotspots(start: date = Query(..., alias="from"), end: date = Query(..., alias="to"),
                   later_from: date | None = None, later_to: date | None = None, district: str | None = None,
                   bandwidth: float | None = Query(None, gt=0), cell: float | None = Query(None, gt=0),
                   permutations: int = Query(999, ge=99, le=9999),
                   who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Quartic KDE and Gi* layers as GeoJSON; the PAI when a later period is given."""
    from kuzet.services.crime.analysis import hotspot_map

    district = _scope(inst, who, district)
    later = (later_from, later_to) if later_from and later_to else None
    with inst.db.session() as session:
        return _wrap(lambda: hotspot_map(session, start, end, district=district, later=later, bandwidth=bandwidth,
                                         cell=cell, permutations=permutations))


@router.get("/effect")
def crime_effect(installed_from: date, installed_to: date, radius: float = Query(150, gt=0),
                 months: int = Query(12, ge=1, le=60), offence_type: str | None = None,
                 intervention: str = Query("cameras", pattern="^(cameras|safe_yards)$"),
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Effect of cameras installed, or of safe yards that joined, in [installed_from, installed_to]."""
    from kuzet.services.crime.analysis import cameras_installed, intervention_effect, safe_yards_joined

    _scope(inst, who, None, city_only=True)
    with inst.db.session() as session:
        pick = cameras_installed if intervention == "cameras" else safe_yards_joined
        when, sites = pick(session, installed_from, installed_to)
        if not sites:
            raise ApiError(422, f"no {intervention.replace('_', ' ')} with coordinates in that period")
        return intervention_effect(session, when, sites, radius=radius, months=months, offence_type=offence_type)


@router.get("/coverage")
def crime_coverage(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    from kuzet.services.crime.analysis import street_coverage

    _scope(inst, who, None, city_only=True)
    with inst.db.session() as session:
        return _wrap(lambda: street_coverage(session))


@router.get("/plan")
def crime_plan(cameras: int = Query(..., ge=1, le=1000), start: date = Query(..., alias="from"),
               end: date = Query(..., alias="to"), radius: float = Query(100, gt=0), method: str = "auto",
               who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    from kuzet.services.crime.analysis import plan_cameras

    _scope(inst, who, None, city_only=True)
    if method not in ("auto", "exact", "greedy"):
        raise ApiError(422, "method is auto, exact or greedy")
    with inst.db.session() as session:
        return _wrap(lambda: plan_cameras(session, cameras, start, end, radius=radius, method=method))
