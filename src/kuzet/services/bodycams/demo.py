"""The demo's body-worn and dash cameras: duties in duty unit 1 (responder1 wears a camera, duty1 supervises) and in
duty unit 2 (duty2 is its evidence custodian), and three devices."""

from __future__ import annotations

from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.bodycams.devices import register_device
from kuzet.services.bodycams.units import assign_duty
from kuzet.services.demo import DemoCity
from kuzet.store.models import User
from kuzet.store.models.bodycams import BodycamDevice

DUTIES = (("responder1", "officer"), ("duty1", "supervisor"), ("duty2", "custodian"))
DEVICES = (("BWC-0001", "body", "duty1"), ("DASH-0001", "dash", "duty1"), ("BWC-0101", "body", "duty2"))


def seed(inst: Installation, city: DemoCity) -> None:
    with inst.db.session() as session:
        if session.scalar(select(BodycamDevice.id).limit(1)) is not None:
            return
        admin = session.scalar(select(User).where(User.username == "admin"))
        for username, duty in DUTIES:
            user = session.scalar(select(User).where(User.username == username))
            assign_duty(session, SYSTEM, admin, user_id=user.id, duty=duty,
                        legal_basis="Приказ о закреплении видеожетонов (демо)")
        for serial, kind, unit in DEVICES:
            register_device(session, SYSTEM, admin, serial=serial, kind=kind,
                            organisation_id=city.organisations[unit], model="Demo BWC-2" if kind == "body" else
                            "Demo DVR-1")
