"""Safe-yard passports: ``/api/v1/safe-yards``. Personal fields answer 404 to anyone without need to know; every read
of them needs a ``purpose`` and is audited."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.installation import Installation
from kuzet.services.safeyard import passport as pp
from kuzet.services.safeyard.vault import Vault
from kuzet.store.models import Place, User
from kuzet.store.models.safeyard import SafeYard, SafeYardChange

router = APIRouter(prefix="/safe-yards", tags=["safe yards"])


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


def _summary(session, yard: SafeYard, inst: Installation) -> dict:  # noqa: ANN001
    place = session.get(Place, yard.place_id)
    district = session.get(Place, yard.district_id) if yard.district_id else None
    inspector = session.get(User, yard.inspector_id) if yard.inspector_id else None
    return {"id": yard.id, "place_id": yard.place_id, "yard": place.name, "address": place.address,
            "district": district.name if district else None, "joined_on": yard.joined_on,
            "inspector": inspector.full_name or inspector.username if inspector else None,
            "characteristics": yard.characteristics, "notes": yard.notes,
            "cameras": pp.yard_cameras(session, yard, inst.extras.get("recorder"))}


@router.get("")
def list_yards(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        yards = [y for y in session.scalars(select(SafeYard).order_by(SafeYard.id))
                 if pp.may_see_yard(session, who.user, y)]
        vault = _vault(inst)
        items = []
        for y in yards:
            item = _summary(session, y, inst)
            item["counts"] = pp.masked_list(session, vault, y)["counts"]
            items.append(item)
        return {"items": items, "total": len(items)}


class YardIn(BaseModel):
    place_id: int
    joined_on: date
    inspector_id: int | None = None
    characteristics: dict = {}
    notes: str | None = None


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
        return _summary(session, yard, inst)


class YardPatch(BaseModel):
    characteristics: dict | None = None
    notes: str | None = None
    inspector_id: int | None = None
    joined_on: date | None = None


@router.patch("/{yard_id}")
def edit(yard_id: int, body: YardPatch, who: Caller = Depends(caller),
         inst: Installation = Depends(installation)) -> dict:
    """Edit the passport (characteristics, notes, responsible inspector, date joined); kept in its history."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            pp.update_yard(session, who.actor, yard, body.model_dump(exclude_unset=True))
        except pp.PassportError as exc:
            raise ApiError(422, str(exc)) from None
        return _summary(session, yard, inst)


@router.get("/dashboard")
def dashboard(who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    from kuzet.services.safeyard.dashboard import dashboard as build

    with inst.db.session() as session:
        yards = [y for y in session.scalars(select(SafeYard)) if pp.may_see_yard(session, who.user, y)]
        if not yards and who.user.role not in ("platform_admin", "analyst"):
            raise not_found()
        return build(session, yards, inst.extras.get("recorder"))


@router.get("/{yard_id}")
def get_yard(yard_id: int, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """The passport with counts and masked values (no personal data)."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id)
        out = _summary(session, yard, inst)
        masked = pp.masked_list(session, _vault(inst), yard)
        out["counts"] = masked["counts"]
        if pp.may_read_personal(session, who.user, yard):
            out["people"] = masked["people"]
        out["history"] = [{"at": c.at, "user_id": c.user_id, "action": c.action, "details": c.details}
                          for c in session.scalars(select(SafeYardChange).where(SafeYardChange.safe_yard_id == yard.id)
                                                   .order_by(SafeYardChange.at))]
        return out


@router.get("/{yard_id}/people")
def people(yard_id: int, purpose: str = Query(..., min_length=3), who: Caller = Depends(caller),
           inst: Installation = Depends(installation)) -> list[dict]:
    """Every personal record of the passport, decrypted; needs a purpose, audited."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        return pp.read_all(session, _vault(inst), who.actor, who.user, yard, purpose)


@router.get("/{yard_id}/people/{person_id}")
def person(yard_id: int, person_id: int, purpose: str = Query(..., min_length=3), who: Caller = Depends(caller),
           inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            return pp.read_person(session, _vault(inst), who.actor, who.user, yard, person_id, purpose)
        except pp.NotVisible:
            raise not_found("person not found") from None


class PersonIn(BaseModel):
    category: str
    fields: dict


@router.post("/{yard_id}/people", status_code=201)
def add(yard_id: int, body: PersonIn, who: Caller = Depends(caller),
        inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            rec = pp.add_person(session, _vault(inst), who.actor, yard, body.category, body.fields)
        except pp.PassportError as exc:
            raise ApiError(422, str(exc)) from None
        return {"id": rec.id, "category": rec.category}


@router.delete("/{yard_id}/people/{person_id}", status_code=204)
def erase(yard_id: int, person_id: int, basis: str = Query(..., min_length=3), who: Caller = Depends(caller),
          inst: Installation = Depends(installation)) -> None:
    """Erase a person's record (right to erasure); the erasure is audited with its basis."""
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            pp.erase_person(session, who.actor, who.user, yard, person_id, basis)
        except pp.NotVisible:
            raise not_found("person not found") from None


@router.get("/subject-access/{iin}")
def subject_access(iin: str, purpose: str = Query(..., min_length=3), who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> list[dict]:
    """Right of access: every record held about the person with this national ID number."""
    with inst.db.session() as session:
        return pp.subject_access(session, _vault(inst), who.actor, who.user, iin=iin, purpose=purpose)


@router.post("/{yard_id}/import", status_code=201)
async def import_lists(yard_id: int, file: UploadFile = File(...), who: Caller = Depends(caller),
                       inst: Installation = Depends(installation)) -> dict:
    import tempfile
    from pathlib import Path

    from kuzet.services.crime.importing import ImportRejected
    from kuzet.services.safeyard.lists import import_people

    suffix = Path(file.filename or "lists.csv").suffix or ".csv"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(await file.read())
        tmp.flush()
        try:
            with inst.db.session() as session:
                yard = _yard(session, who, yard_id, personal=True)
                n = import_people(session, _vault(inst), who.actor, yard, Path(tmp.name))
        except ImportRejected as exc:
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": {"code": "import_rejected", "message": str(exc), "rows": [
                {"line": e.line, "message": e.message} for e in exc.errors]}}, status_code=422)
    return {"imported": n}


@router.get("/{yard_id}/passport.pdf")
def passport_pdf(yard_id: int, lang: str = "ru", personal: bool = False, purpose: str | None = None,
                 who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> Response:
    """The printable passport; ``personal=true`` (with a purpose) includes the lists, otherwise only counts."""
    from kuzet.services.safeyard.printing import passport_pdf as render

    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=personal)
        info = _summary(session, yard, inst)
        place = session.get(Place, yard.place_id)
        info["place"] = {"lat": place.lat, "lon": place.lon}
        info["joined"] = yard.joined_on.isoformat()
        info["counts"] = pp.masked_list(session, _vault(inst), yard)["counts"]
        from kuzet.store.models.safeyard import SafeYardPhoto

        photo = session.scalar(select(SafeYardPhoto).where(SafeYardPhoto.safe_yard_id == yard.id)
                               .order_by(SafeYardPhoto.id.desc()))
        info["photo"] = str(inst.settings.recordings_path / photo.path) if photo else None
        people = None
        if personal:
            if not purpose:
                raise ApiError(422, "a purpose is required to print personal data")
            people = pp.read_all(session, _vault(inst), who.actor, who.user, yard, purpose)
    return Response(render(info, lang, people), media_type="application/pdf")


@router.post("/{yard_id}/photos", status_code=201)
async def upload_photo(yard_id: int, file: UploadFile = File(...), caption: str | None = None,
                       who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """A house photo (JPEG or PNG), stored with the recordings, with a thumbnail."""
    from kuzet.services.safeyard.photos import PhotoError, store_photo

    data = await file.read()
    with inst.db.session() as session:
        yard = _yard(session, who, yard_id, personal=True)
        try:
            photo = store_photo(session, inst.settings.recordings_path, who.actor, yard, data, caption)
        except PhotoError as exc:
            raise ApiError(422, str(exc)) from None
        return {"id": photo.id, "caption": photo.caption}


@router.get("/{yard_id}/photos/{photo_id}")
def get_photo(yard_id: int, photo_id: int, thumbnail: bool = False, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> Response:
    from kuzet.store.models.safeyard import SafeYardPhoto

    with inst.db.session() as session:
        _yard(session, who, yard_id)
        photo = session.get(SafeYardPhoto, photo_id)
        if photo is None or photo.safe_yard_id != yard_id:
            raise not_found("photo not found")
        path = inst.settings.recordings_path / (photo.thumbnail if thumbnail else photo.path)
    return Response(path.read_bytes(), media_type="image/jpeg")
