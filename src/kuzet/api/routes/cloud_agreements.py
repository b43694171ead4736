"""Routing agreements with police units and the control centre, and the retention-compliance report.

Agreements are registered, ended, renewed and given their signed document by platform admins and the telecom's
operator admins; they are read by those, auditors, and the members of the party and of the unit (404 to anyone
else). The compliance report is read by whoever runs the business (cameras in reach) and by organisation admins
(their organisation's cameras)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.limits import spool
from kuzet.api.routes.cloud_common import Day, ScopeRight, business_of, service_errors
from kuzet.api.routes.common import ERRORS, Id, errors, media
from kuzet.domain.access import Role
from kuzet.domain.cloud import CloudAction
from kuzet.installation import Installation
from kuzet.services import access, audit
from kuzet.services.cameras import CAMERA_KINDS
from kuzet.services.cloud import agreements, compliance
from kuzet.services.cloud.common import Business, BusinessDenied
from kuzet.store.models import Camera, Organisation, Place
from kuzet.store.models.cloud import Agreement, AgreementTarget, RetentionRequirement

router = APIRouter(prefix="/cloud", tags=["cloud"], responses=ERRORS)


class AgreementIn(BaseModel):
    number: str = Field(min_length=1, max_length=100)
    party_org_id: Id
    holder_org_id: Id
    starts_on: Day
    ends_on: Day | None = None
    scope: list[ScopeRight] = Field(min_length=1, max_length=4)
    legal_basis: str = Field(min_length=1, max_length=400)
    place_ids: list[Id] = Field(default_factory=list, max_length=1000)
    camera_ids: list[Id] = Field(default_factory=list, max_length=1000)
    archive_days_required: int | None = Field(None, ge=1, le=3650)


class TargetOut(BaseModel):
    place_id: int | None
    camera_id: int | None
    name: str
    grant_id: int | None


class AgreementOut(BaseModel):
    id: int
    number: str
    party_org_id: int
    party: str
    holder_org_id: int
    holder: str
    starts_on: date
    ends_on: date | None
    scope: list[str]
    legal_basis: str
    archive_days_required: int | None
    state: str
    renews_id: int | None
    renewed_by_id: int | None
    targets: list[TargetOut]
    document: bool
    document_name: str | None
    document_sha256: str | None
    document_bytes: int | None
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None


def _out(session, inst: Installation, a: Agreement) -> AgreementOut:  # noqa: ANN001
    names = dict(session.execute(select(Organisation.id, Organisation.name).where(
        Organisation.id.in_([a.party_org_id, a.holder_org_id]))).all())
    targets = []
    for t in session.scalars(select(AgreementTarget).where(AgreementTarget.agreement_id == a.id)
                             .order_by(AgreementTarget.id)):
        if t.place_id is not None:
            name = session.get(Place, t.place_id).name
        else:
            camera = session.get(Camera, t.camera_id) if t.camera_id else None
            name = camera.name if camera else ""
        targets.append(TargetOut(place_id=t.place_id, camera_id=t.camera_id, name=name, grant_id=t.grant_id))
    return AgreementOut(
        id=a.id, number=a.number, party_org_id=a.party_org_id, party=names.get(a.party_org_id, ""),
        holder_org_id=a.holder_org_id, holder=names.get(a.holder_org_id, ""), starts_on=a.starts_on,
        ends_on=a.ends_on, scope=a.scope.split(","), legal_basis=a.legal_basis,
        archive_days_required=a.archive_days_required, state=agreements.state_now(a, inst.settings.timezone),
        renews_id=a.renews_id, renewed_by_id=a.renewed_by_id, targets=targets, document=a.document_path is not None,
        document_name=a.document_name, document_sha256=a.document_sha256, document_bytes=a.document_bytes,
        created_at=a.created_at, ended_at=a.ended_at, end_reason=a.end_reason)


def _seen(session, who: Caller, agreement_id: int) -> Agreement:  # noqa: ANN001
    agreement = session.get(Agreement, agreement_id)
    if agreement is None or not agreements.may_see(session, who.user, agreement):
        raise not_found("agreement not found")
    return agreement


def _managed(session, who: Caller, agreement_id: int) -> tuple[Agreement, Business]:  # noqa: ANN001
    """An agreement the caller may change: seen (404 otherwise) and run by the business (403 otherwise)."""
    agreement = _seen(session, who, agreement_id)
    try:
        return agreement, Business(session, who.user)
    except BusinessDenied:
        raise ApiError(403, "only platform admins and the telecom's operator admins change agreements") from None


@router.get("/agreements", response_model=list[AgreementOut])
def list_agreements(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[AgreementOut]:
    """The agreements the caller may read, newest first."""
    with inst.db.session() as session:
        return [_out(session, inst, a) for a in agreements.visible(session, who.user)]


@router.post("/agreements", response_model=AgreementOut, status_code=201)
def post_agreement(body: AgreementIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> AgreementOut:
    """Register an agreement: it makes its grants to the unit at once (403 if the party does not hold the scope on a
    target, or not for that long)."""
    with inst.db.session() as session, service_errors():
        business = business_of(session, who.user)
        agreement = agreements.create_agreement(session, who.actor, business, agreements.Terms(**body.model_dump()),
                                                inst.settings.timezone)
        return _out(session, inst, agreement)


class BulkIn(BaseModel):
    root_place_id: Id
    place_kinds: list[Literal["school", "public_place"]] = Field(min_length=1, max_length=2)
    holder_org_id: Id
    scope: list[ScopeRight] = Field(min_length=1, max_length=4)
    starts_on: Day
    ends_on: Day | None = None
    legal_basis: str = Field(min_length=1, max_length=400)
    number_prefix: str = Field(min_length=1, max_length=80)


class SkippedOut(BaseModel):
    place_id: int
    reason: str


class BulkOut(BaseModel):
    created: list[AgreementOut]
    skipped: list[SkippedOut]


@router.post("/agreements/bulk", response_model=BulkOut, status_code=201)
def post_bulk(body: BulkIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Route every school (and public place: malls, hospitals) under a place to a unit, one agreement per site with
    the organisation sited there as party. All or nothing."""
    with inst.db.session() as session, service_errors():
        business = business_of(session, who.user)
        result = agreements.route_sites(session, who.actor, business, inst.settings.timezone, **body.model_dump())
        return {"created": [_out(session, inst, a) for a in result.created],
                "skipped": [{"place_id": p, "reason": r} for p, r in result.skipped]}


@router.get("/agreements/{agreement_id}", response_model=AgreementOut)
def get_agreement(agreement_id: Id, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> AgreementOut:
    with inst.db.session() as session:
        return _out(session, inst, _seen(session, who, agreement_id))


class EndIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/agreements/{agreement_id}/end", response_model=AgreementOut)
def end_agreement(agreement_id: Id, body: EndIn, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> AgreementOut:
    """End it now: the unit's grants are revoked at once (its open streams end within seconds)."""
    with inst.db.session() as session, service_errors():
        agreement, _business = _managed(session, who, agreement_id)
        return _out(session, inst, agreements.end_agreement(session, who.actor, agreement, body.reason))


class RenewIn(BaseModel):
    number: str = Field(min_length=1, max_length=100)
    ends_on: Day | None = None
    legal_basis: str | None = Field(None, min_length=1, max_length=400)
    scope: list[ScopeRight] | None = Field(None, min_length=1, max_length=4)


@router.post("/agreements/{agreement_id}/renew", response_model=AgreementOut, status_code=201)
def renew_agreement(agreement_id: Id, body: RenewIn, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> AgreementOut:
    """A new agreement continuing this one from the day after it ends; both stay on record, linked."""
    with inst.db.session() as session, service_errors():
        agreement, business = _managed(session, who, agreement_id)
        new = agreements.renew_agreement(session, who.actor, business, agreement, inst.settings.timezone,
                                         **body.model_dump())
        return _out(session, inst, new)


@router.put("/agreements/{agreement_id}/document", response_model=AgreementOut, responses=errors(413))
async def put_document(agreement_id: Id, file: UploadFile = File(...), who: Caller = Depends(caller),
                       inst: Installation = Depends(installation)) -> AgreementOut:
    """The signed agreement as a PDF, at most ``cloud.document_max_bytes`` (413 past it, counted while it streams)."""
    limit = min(inst.settings.cloud.document_max_bytes, inst.settings.http.max_upload_bytes)

    def check() -> None:
        with inst.db.session() as session:
            _managed(session, who, agreement_id)

    await run_in_threadpool(check)
    with await spool(file, limit, ".pdf") as tmp:
        def work() -> AgreementOut:  # in a worker thread, never on the event loop
            with inst.db.session() as session, service_errors():
                agreement, _business = _managed(session, who, agreement_id)
                agreements.store_document(session, who.actor, inst.settings.data_dir, agreement, Path(tmp.name),
                                          file.filename or "agreement.pdf")
                return _out(session, inst, agreement)

        return await run_in_threadpool(work)


@router.get("/agreements/{agreement_id}/document", response_class=FileResponse, responses=media("application/pdf"))
def get_document(agreement_id: Id, who: Caller = Depends(caller),
                 inst: Installation = Depends(installation)) -> FileResponse:
    """The signed document, streamed back (its reading is audited)."""
    with inst.db.session() as session:
        agreement = _seen(session, who, agreement_id)
        try:
            path = agreements.document_file(inst.settings.data_dir, agreement)
        except LookupError as exc:
            raise not_found(str(exc)) from None
        audit.append(session, who.actor, CloudAction.AGREEMENT_DOCUMENT_READ, object_type="agreement",
                     object_id=agreement.id, details={"sha256": agreement.document_sha256})
        name = agreement.document_name or "agreement.pdf"
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)
    return FileResponse(path, media_type="application/pdf", filename=safe)


# --- compliance -----------------------------------------------------------------------------------------------------

class RequirementIn(BaseModel):
    camera_kind: Literal[CAMERA_KINDS]
    days: int = Field(ge=1, le=3650)
    basis: str = Field("", max_length=500)


class RequirementOut(BaseModel):
    camera_kind: str
    days: int
    basis: str


@router.get("/requirements", response_model=list[RequirementOut])
def get_requirements(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> list[dict]:
    with inst.db.session() as session:
        _compliance_cameras(session, who)
        return [{"camera_kind": r.camera_kind, "days": r.days, "basis": r.basis}
                for r in session.scalars(select(RetentionRequirement).order_by(RetentionRequirement.camera_kind))]


@router.put("/requirements", response_model=RequirementOut)
def put_requirement(body: RequirementIn, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> dict:
    """The archive depth every camera of a kind must hold (schools, public places, entrances)."""
    with inst.db.session() as session, service_errors():
        business_of(session, who.user)
        row = compliance.save_requirement(session, who.actor, body.camera_kind, body.days, body.basis)
        return {"camera_kind": row.camera_kind, "days": row.days, "basis": row.basis}


def _compliance_cameras(session, who: Caller) -> list[int] | None:  # noqa: ANN001
    """Cameras the caller's report covers (None: all): the business's reach, or an organisation admin's own."""
    user = who.user
    if access.is_platform_admin(user):
        return None
    if user.role == Role.OPERATOR_ADMIN:
        business = business_of(session, user)
        return [c.id for c, place in session.execute(select(Camera, Place).join(Place, Place.id == Camera.place_id))
                if business.covers(place)]
    if user.role == Role.ORGANISATION_ADMIN and user.organisation_id is not None:
        return list(session.scalars(select(Camera.id).where(Camera.owner_org_id == user.organisation_id)))
    raise not_found("not found")


class CameraComplianceOut(BaseModel):
    camera_id: int
    name: str
    kind: str
    place: str
    organisation_id: int | None
    organisation: str | None
    required_days: int | None
    required_by: list[str]
    held_days: float
    missing_days: float
    oldest: datetime | None
    retention_days: int
    retention_too_short: bool
    uptime_percent: float
    gap_seconds: dict[str, float]
    gaps: int
    offline_since: datetime | None
    offline_reason: str | None
    enabled: bool
    short: bool


class OrganisationComplianceOut(BaseModel):
    organisation_id: int | None
    organisation: str | None
    cameras: int
    short: int
    offline: int
    uptime_percent: float
    short_cameras: list[str]


class ComplianceOut(BaseModel):
    at: datetime
    window_days: int
    cameras: list[CameraComplianceOut]
    organisations: list[OrganisationComplianceOut]
    short: list[int]
    offline: list[int]


def _report(session, who: Caller, inst: Installation, window_days: int, organisation: int | None):  # noqa: ANN001, ANN202
    ids = _compliance_cameras(session, who)
    if organisation is not None:
        owned = set(session.scalars(select(Camera.id).where(Camera.owner_org_id == organisation)))
        ids = [i for i in (ids if ids is not None else owned) if i in owned]
    return compliance.report(session, inst.settings.timezone, camera_ids=ids, window_days=window_days)


@router.get("/compliance", response_model=ComplianceOut)
def get_compliance(window_days: int = Query(30, ge=1, le=366), organisation: Id | None = None,
                   who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Per camera: required depth (and what requires it), depth held, uptime %, gaps by reason, offline now; per
    organisation the same summed up; ``short`` names the cameras short of their required depth."""
    with inst.db.session() as session:
        return _report(session, who, inst, window_days, organisation).as_dict()


@router.get("/compliance.xlsx", response_class=Response,
            responses=media("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
def compliance_workbook(window_days: int = Query(30, ge=1, le=366), organisation: Id | None = None,
                        lang: Literal["ru", "kk"] = "ru", who: Caller = Depends(caller),
                        inst: Installation = Depends(installation)) -> Response:
    from kuzet.services.cloud.compliance_print import compliance_xlsx

    with inst.db.session() as session:
        report = _report(session, who, inst, window_days, organisation)
    return Response(compliance_xlsx(report, lang, who.user.timezone or inst.settings.timezone),  # the reader's
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="compliance.xlsx"'})


@router.get("/compliance.pdf", response_class=Response, responses=media("application/pdf"))
def compliance_document(window_days: int = Query(30, ge=1, le=366), organisation: Id | None = None,
                        lang: Literal["ru", "kk"] = "ru", who: Caller = Depends(caller),
                        inst: Installation = Depends(installation)) -> Response:
    """Printable, in Russian or Kazakh: the cameras short of their required depth first, in red."""
    from kuzet.services.cloud.compliance_print import compliance_pdf

    with inst.db.session() as session:
        report = _report(session, who, inst, window_days, organisation)
    return Response(compliance_pdf(report, lang, who.user.timezone or inst.settings.timezone),
                    media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="compliance.pdf"'})
