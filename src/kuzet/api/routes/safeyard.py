"""Safe-yard passports: ``/api/v1/safe-yards``. Personal fields answer 404 to anyone without need to know; every read
of them needs a ``purpose`` and is audited."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found, rejected_rows
from kuzet.api.limits import spool, suffix_of
from kuzet.api.routes.common import ERRORS, Id, Paging, errors, media
from kuzet.api.schemas import Language, unset
from kuzet.installation import Installation
from kuzet.services.safeyard import assignments, photos
from kuzet.services.safeyard import passport as pp
from kuzet.services.safeyard.vault import Vault
from kuzet.store.models import Place, User
from kuzet.store.models.safeyard import DistrictAssignment, SafeYard, SafeYardChange
from kuzet.web import i18n

router = APIRouter(prefix="/safe-yards", tags=["safe yards"], responses=ERRORS)
def _purpose(value: str) -> str:
    """A purpose people can read in the audit log: three visible characters at least, not blanks or control codes."""
    text = "".join(ch for ch in value if ch.isprintable()).strip()
    if len(text) < 3:
        raise ValueError("the purpose must say why, in at least three visible characters")
    return text


Purpose = Annotated[str, Query(min_length=3, max_length=500, description="Why the personal data is read (audited)"),
                    AfterValidator(_purpose)]
Category = Literal[tuple(pp.CATEGORIES)]


def _vault(inst: Installation) -> Vault:
    return Vault(inst.settings.keys_path)


def _yard(session, who: Caller, yard_id: int, personal: bool = False) -> SafeYard:  # noqa: ANN001
    yard = session.get(SafeYard, yard_id)
    if yard is None:
        raise not_found("safe yard not found")
    allowed = pp.may_read_personal(session, who.user, yard) if personal else pp.may_see_yard(session, who.user, yard)
    if not allowed:
        raise not_found("safe yard not found")
    return yard


def _summary(session, yard: SafeYard, inst: Installation, who: Caller) -> dict:  # noqa: ANN001
    place = session.get(Place, yard.place_id)
    district = session.get(Place, yard.district_id) if yard.district_id else None
    inspector = session.get(User, yard.inspector_id) if yard.inspector_id else None
    return {"id": yard.id, "place_id": yard.place_id, "yard": place.name, "address": place.address,
            "full_address": pp.yard_address(session, place),
            "district": district.name if district else None, "joined_on": yard.joined_on,
            "inspector": inspector.full_name or inspector.username if inspector else None,
            "characteristics": yard.characteristics, "notes": yard.notes,
            "cameras": pp.yard_cameras(session, yard, who.user, inst.running.recorder)}


@router.get("")
def list_yards(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        yards = [y for y in session.scalars(select(SafeYard).order_by(SafeYard.id))
                 if pp.may_see_yard(session, who.user, y)]
        vault = _vault(inst)
        items = []
        for y in yards:
            item = _summary(session, y, inst, who)
            item["counts"] = pp.masked_list(session, vault, y)["counts"]
            items.append(item)
        return {"items": items, "total": len(items)}


Characteristics = dict[str, Any]


class YardIn(BaseModel):
    place_id: Id
    joined_on: date
    inspector_id: Id | None = None
    characteristics: Characteristics = Field(default_factory=dict, max_length=100)
    notes: str | None = Field(None, max_length=20_000)


@router.post("", status_code=201)
def create(body: YardIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        place = session.get(Place, body.place_id)
        probe = SafeYard(place_id=body.place_id, district_id=None)
        if place is not None:
            from kuzet.services.places import district_of

            d = district_of(session, place)
            probe.district_id = d.id if d else None
        if place is None or not pp.may_read_personal(session, who.user, probe):
            raise not_found("yard not found")
        try:
            yard = pp.create_yard(session, who.actor, body.place_id, body.joined_on, inspector_id=body.inspector_id,
                                  characteristics=body.characteristics, notes=body.notes)
        except pp.PassportError as exc:
            raise ApiError(422, str(exc)) from None
        return _summary(session, yard, inst, who)


class YardPatch(BaseModel):
    """Leave a field out to keep it; ``null`` clears notes and the responsible inspector."""

    characteristics: Characteristics = unset(max_length=100)
    notes: str | None = Field(None, max_length=20_000)
    inspector_id: Id | None = None
    joined_on: date = unset()


@router.patch("/{yard_id}")
def edit(yard_id: Id, body: YardPatch, who: Caller = Depends(caller),
         inst: Installation = Depends(installation)) -> dict:
    """Edit the passport (characteristics, notes, responsible inspector, date joined); kept in its history."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            pp.update_yard(session, who.actor, yard, body.model_dump(exclude_unset=True))
        except pp.PassportError as exc:
            raise ApiError(422, str(exc)) from None
        return _summary(session, yard, inst, who)


class AssignmentIn(BaseModel):
    user_id: Id
    place_id: Id
    legal_basis: str = Field(min_length=1, max_length=500)
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@router.get("/assignments")
def list_assignments(paging: Paging = Depends(), user_id: Id | None = None, active: bool | None = None,
                     who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Who is assigned to which district (need to know for personal data): platform admins and auditors see all, a
    police organisation's admin its staff's, anyone their own."""
    with inst.db.session() as session:
        query = assignments.visible_assignments(session, who.user).order_by(DistrictAssignment.id.desc())
        if user_id is not None:
            query = query.where(DistrictAssignment.user_id == user_id)
        if active is not None:
            query = query.where(DistrictAssignment.revoked_at.is_(None) if active
                                else DistrictAssignment.revoked_at.is_not(None))
        return paging.page(session, query, lambda row: assignments.assignment_out(session, row))


@router.post("/assignments", status_code=201)
def create_assignment(body: AssignmentIn, who: Caller = Depends(caller),
                      inst: Installation = Depends(installation)) -> dict:
    """Assign an inspector (or a supervising police operator) to a district, with the order that does it (audited)."""
    with inst.db.session() as session:
        try:
            row = assignments.assign(session, who.actor, who.user, **body.model_dump())
        except assignments.AssignmentDenied as exc:
            raise not_found(str(exc)) from None
        except assignments.AssignmentError as exc:
            raise ApiError(422, str(exc)) from None
        return assignments.assignment_out(session, row)


@router.delete("/assignments/{assignment_id}")
def end_assignment(assignment_id: Id, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> dict:
    """End an assignment now (it stays on record)."""
    with inst.db.session() as session:
        row = session.scalar(assignments.visible_assignments(session, who.user)
                             .where(DistrictAssignment.id == assignment_id))
        if row is None:
            raise not_found("assignment not found")
        try:
            assignments.end(session, who.actor, who.user, row)
        except assignments.AssignmentDenied as exc:
            raise not_found(str(exc)) from None
        return assignments.assignment_out(session, row)


class SubjectAccessIn(BaseModel):
    iin: str = Field(min_length=12, max_length=12, pattern=r"^[0-9]{12}$")
    purpose: str = Field(min_length=3, max_length=500)


@router.post("/subject-access")
def subject_access(body: SubjectAccessIn, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> list[dict]:
    """Right of access: every record held about the person with this national ID number (in the body, never in a
    URL), among the yards the caller needs to know; audited with its purpose."""
    with inst.db.session() as session:
        return pp.subject_access(session, _vault(inst), who.actor, who.user, iin=body.iin, purpose=body.purpose)


@router.get("/dashboard")
def dashboard(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    from kuzet.services.safeyard.dashboard import dashboard as build

    with inst.db.session() as session:
        yards = [y for y in session.scalars(select(SafeYard)) if pp.may_see_yard(session, who.user, y)]
        if not yards and who.user.role not in ("platform_admin", "analyst"):
            raise not_found()
        return build(session, yards, inst.running.recorder)


@router.get("/{yard_id}")
def get_yard(yard_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """The passport with counts and masked values (no personal data)."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id)
        out = _summary(session, yard, inst, who)
        masked = pp.masked_list(session, _vault(inst), yard)
        out["counts"] = masked["counts"]
        if pp.may_read_personal(session, who.user, yard):
            out["people"] = masked["people"]
        changes = session.scalars(select(SafeYardChange).where(SafeYardChange.safe_yard_id == yard.id)
                                  .order_by(SafeYardChange.at)).all()
        authors = {u.id: u.full_name or u.username
                   for u in session.scalars(select(User).where(User.id.in_({c.user_id for c in changes if c.user_id})))}
        out["history"] = [{"at": c.at, "user_id": c.user_id, "by": authors.get(c.user_id), "action": c.action,
                           "details": c.details} for c in changes]
        return out


@router.get("/{yard_id}/people")
def people(yard_id: Id, purpose: Purpose, who: Caller = Depends(caller),
           inst: Installation = Depends(installation)) -> list[dict]:
    """Every personal record of the passport, decrypted; needs a purpose, audited."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        return pp.read_all(session, _vault(inst), who.actor, who.user, yard, purpose)


@router.get("/{yard_id}/people/{person_id}")
def person(yard_id: Id, person_id: Id, purpose: Purpose, who: Caller = Depends(caller),
           inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            return pp.read_person(session, _vault(inst), who.actor, who.user, yard, person_id, purpose)
        except pp.NotVisible:
            raise not_found("person not found") from None


class PersonIn(BaseModel):
    category: Category
    fields: dict[str, Annotated[str, Field(max_length=500)] | None] = Field(max_length=10)


@router.post("/{yard_id}/people", status_code=201)
def add(yard_id: Id, body: PersonIn, who: Caller = Depends(caller),
        inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            rec = pp.add_person(session, _vault(inst), who.actor, yard, body.category, body.fields)
        except pp.PassportError as exc:
            raise ApiError(422, str(exc)) from None
        return {"id": rec.id, "category": rec.category}


@router.delete("/{yard_id}/people/{person_id}", status_code=204)
def erase(yard_id: Id, person_id: Id, basis: Annotated[str, Query(min_length=3, max_length=500)],
          who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> None:
    """Erase a person's record (right to erasure); the erasure is audited with its basis."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            pp.erase_person(session, who.actor, who.user, yard, person_id, basis)
        except pp.NotVisible:
            raise not_found("person not found") from None


@router.post("/{yard_id}/import", status_code=201, responses=errors(413))
async def import_lists(request: Request, yard_id: Id, file: UploadFile = File(...), who: Caller = Depends(caller),
                       inst: Installation = Depends(installation)) -> dict:
    from pathlib import Path

    from kuzet.services.crime.importing import ImportRejected
    from kuzet.services.safeyard.lists import import_people

    suffix = suffix_of(file.filename, ".csv")
    with await spool(file, inst.settings.http.max_upload_bytes, suffix) as tmp:
        def work() -> int:  # in a worker thread, never on the event loop
            with inst.db.session() as session:
                yard = _yard(session, who, yard_id, personal=True)
                return import_people(session, _vault(inst), who.actor, yard, Path(tmp.name))

        try:
            n = await run_in_threadpool(work)
        except ImportRejected as exc:
            return rejected_rows(request, str(exc), [(e.line, e.message) for e in exc.errors])
    return {"imported": n}


@router.get("/{yard_id}/passport.pdf", response_class=Response, responses=media("application/pdf"))
def passport_pdf(yard_id: Id, lang: Language = "ru", personal: bool = False,
                 purpose: Annotated[str | None, Query(min_length=3, max_length=500),
                                    AfterValidator(lambda v: v if v is None else _purpose(v))] = None,
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    """The printable passport; ``personal=true`` (with a purpose) includes the lists, otherwise only counts."""
    from kuzet.services.safeyard.printing import passport_pdf as render

    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=personal)
        info = _summary(session, yard, inst, who)
        place = session.get(Place, yard.place_id)
        info["place"] = {"lat": place.lat, "lon": place.lon}
        info["streets"] = pp.nearby_streets(session, place)
        info["joined"] = yard.joined_on.isoformat()
        info["counts"] = pp.masked_list(session, _vault(inst), yard)["counts"]
        info["photo"] = photos.latest_photo(session, photos.photo_store(inst.settings), yard)
        people = None
        if personal:
            if not purpose:
                raise ApiError(422, "a purpose is required to print personal data")
            people = pp.read_all(session, _vault(inst), who.actor, who.user, yard, purpose)
    return Response(render(info, lang, i18n, people), media_type="application/pdf")


@router.post("/{yard_id}/photos", status_code=201, responses=errors(413))
async def upload_photo(yard_id: Id, file: UploadFile = File(...), caption: str | None = Query(None, max_length=200),
                       who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """A house photo (JPEG or PNG, at most 20 MB), re-encoded as JPEG with a thumbnail in the photo store."""
    with await spool(file, min(photos.MAX_BYTES, inst.settings.http.max_upload_bytes), ".img") as tmp:
        data = tmp.read()

    def work() -> dict:  # in a worker thread, never on the event loop
        with inst.db.session() as session:
            yard = _yard(session, who, yard_id, personal=True)
            try:
                photo = photos.store_photo(session, photos.photo_store(inst.settings), who.actor, yard, data,
                                           caption)
            except photos.PhotoError as exc:
                raise ApiError(422, str(exc)) from None
            return {"id": photo.id, "caption": photo.caption}

    return await run_in_threadpool(work)


@router.get("/{yard_id}/photos/{photo_id}", response_class=Response, responses=media("image/jpeg"))
def get_photo(yard_id: Id, photo_id: Id, thumbnail: bool = False, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> Response:
    with inst.db.session() as session:
        _yard(session, who, yard_id)
        photo = photos.photo_of(session, yard_id, photo_id)
        if photo is None:
            raise not_found("photo not found")
    try:
        return Response(photos.photo_store(inst.settings).open(photo, thumbnail), media_type="image/jpeg")
    except photos.PhotoMissing:
        raise not_found("photo not found") from None
