"""What the operations centre shows in the demo: analysis on every camera (people detection in the yards), alarm
rules as a duty unit, a security firm and the platform would set them, a hot list with the plate the demo's road
cameras see, and a week of handled incidents so the response-time figures have something to show."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kuzet.installation import Installation
from kuzet.services.audit import Actor
from kuzet.services.demo import DemoCity
from kuzet.services.operations import hotlists, incidents, rules
from kuzet.services.operations.alarms import RESPONDERS, raise_alarm
from kuzet.services.operations.events import EventStore
from kuzet.services.operations.observations import Observation
from kuzet.services.operations.pictures import event_pictures
from kuzet.services.operations.rules import rule_organisations
from kuzet.services.simulator.scenes import DEMO_PLATE
from kuzet.store.db import utcnow
from kuzet.store.models import Camera, Place, User
from kuzet.store.models.operations import Alarm, CameraAnalysis, Dispatch, Incident, IncidentEntry

NIGHT = [{"days": list(range(7)), "from": "22:00", "to": "06:00"}]
AFTER_SCHOOL = [{"days": [0, 1, 2, 3, 4], "from": "19:00", "to": "07:00"}, {"days": [5, 6], "from": "00:00",
                                                                               "to": "24:00"}]
# (offence type, camera slug, days ago, hour UTC, seconds to acknowledge, to dispatch, to arrival, resolution)
HISTORY = [
    ("theft", "b1yard", 6, 17, 35, 80, 540, "Подозреваемый задержан (демо)"),
    ("hooliganism", "b3e1", 5, 19, 50, 120, 720, "Составлен протокол (демо)"),
    ("vandalism", "d1school1", 4, 21, 20, 95, 480, "Ложный вызов не подтвердился, ущерб зафиксирован (демо)"),
    ("theft", "b2yard", 3, 15, 75, 150, 900, "Передано в следственно-оперативную группу (демо)"),
    ("vehicle_theft", "d1road", 2, 9, 15, 45, 600, "Автомобиль остановлен на посту (демо)"),
    ("hooliganism", "b4yard", 1, 18, 40, 110, 660, "Профилактическая беседа (демо)"),
]


def _user(session: Session, name: str) -> User:
    return session.scalar(select(User).where(User.username == name))


def seed(inst: Installation, city: DemoCity) -> None:
    with inst.db.session() as session:
        admin, duty1, duty2, center = (_user(session, n) for n in ("admin", "duty1", "duty2", "center"))
        as_admin = Actor(admin.id, admin.username, "demo")
        # People detection in one yard per district (HOG costs ~12 % of a core per camera on this 2-core demo
        # machine); motion everywhere; plates on the road cameras (their default).
        for slug in ("b1yard", "b3yard"):
            session.add(CameraAnalysis(camera_id=city.cameras[slug], objects=True, detector="hog"))
        rules.create_rule(session, Actor(duty1.id, duty1.username, "demo"), duty1, name="Человек во дворе ночью",
                          place_id=city.districts[0], event_kind="object", labels=["person"], min_duration=2,
                          schedule=NIGHT, priority="high")
        rules.create_rule(session, Actor(duty2.id, duty2.username, "demo"), duty2, name="Человек во дворе ночью",
                          place_id=city.districts[1], event_kind="object", labels=["person"], min_duration=2,
                          schedule=NIGHT, priority="high")
        rules.create_rule(session, as_admin, admin, name="Школа после уроков: движение", place_id=city.schools[0],
                          event_kind="motion", min_duration=3, schedule=AFTER_SCHOOL, priority="medium")
        rules.create_rule(session, as_admin, admin, name="Школа № 12 после уроков: движение",
                          place_id=city.schools[1], event_kind="motion", min_duration=3, schedule=AFTER_SCHOOL,
                          priority="medium")
        rules.create_rule(session, as_admin, admin, name="Двор дома 1 под охраной: движение ночью",
                          organisation_id=city.organisations["security"], camera_id=city.cameras["b1yard"],
                          event_kind="motion", min_duration=3, schedule=NIGHT, priority="high")
        wanted = hotlists.create_list(session, Actor(center.id, center.username, "demo"), "Розыск ДП (демо)",
                                      kind="wanted", priority="critical", organisation_id=center.organisation_id)
        for plate, reason in ((DEMO_PLATE, "Угон, ориентировка № 41 (демо)"), ("123ABC02", "Розыск (демо)"),
                              ("777AA11", "Неуплата штрафов, задержать (демо)")):
            hotlists.add_entry(session, Actor(center.id, center.username, "demo"), wanted, plate, reason)
        _history(session, inst, city)


def _history(session: Session, inst: Installation, city: DemoCity) -> None:
    """Handled incidents of the past week, each opened from an alarm, with a crew and its times."""
    store = EventStore(event_pictures(inst.settings))
    crew = _user(session, "responder1")
    district1 = session.get(Place, city.districts[0]).path
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    for n, (offence, slug, days, hour, ack, to_dispatch, to_arrive, resolution) in enumerate(HISTORY):
        camera = session.get(Camera, city.cameras[slug])
        start = (now - timedelta(days=days)).replace(hour=hour)
        label = "car" if offence == "vehicle_theft" else "person"
        applied = store.apply(session, Observation(camera.id, "object", "end", f"demo-{n}", start,
                                                   end=start + timedelta(seconds=12), label=label, score=0.8))
        orgs = [o.id for o in rule_organisations(session, None, camera, RESPONDERS)]
        alarm = raise_alarm(session, applied.event, camera, f"{camera.name}: {label} (демо)", "high", orgs)
        in_district1 = session.get(Place, camera.place_id).path.startswith(district1)
        operator = _user(session, "duty1" if in_district1 else "duty2")
        actor = Actor(operator.id, operator.username, "demo")
        incident = incidents.create_incident(session, actor, operator, offence_type=offence, alarm_ids=[alarm.id],
                                             title=f"{camera.name} (демо)")
        times = {"created": start + timedelta(seconds=ack + 10), "alarm": start + timedelta(seconds=ack + 10),
                 "dispatched": start + timedelta(seconds=to_dispatch),
                 "crew_acknowledged": start + timedelta(seconds=to_dispatch + 20),
                 "crew_en_route": start + timedelta(seconds=to_dispatch + 40),
                 "crew_on_scene": start + timedelta(seconds=to_dispatch + to_arrive),
                 "crew_closed": start + timedelta(seconds=to_dispatch + to_arrive + 1200),
                 "closed": start + timedelta(seconds=to_dispatch + to_arrive + 1800)}
        if in_district1:  # district 1's crew is in the demo; district 2's incidents were handled without one
            incidents.dispatch(session, actor, operator, incident, [crew.id])
            d = session.scalar(select(Dispatch).where(Dispatch.incident_id == incident.id))
            for status in ("acknowledged", "en_route", "on_scene", "closed"):
                incidents.report(session, Actor(crew.id, crew.username, "demo"), crew, d, status)
            session.execute(update(Dispatch).where(Dispatch.id == d.id).values(
                sent_at=times["dispatched"], acknowledged_at=times["crew_acknowledged"],
                en_route_at=times["crew_en_route"], on_scene_at=times["crew_on_scene"],
                closed_at=times["crew_closed"]))
        incidents.close_incident(session, actor, incident, resolution)
        session.execute(update(Alarm).where(Alarm.id == alarm.id).values(
            raised_at=start, acknowledged_at=start + timedelta(seconds=ack)))
        session.execute(update(Incident).where(Incident.id == incident.id).values(
            created_at=times["created"], closed_at=times["closed"]))
        for kind, at in times.items():
            session.execute(update(IncidentEntry).where(IncidentEntry.incident_id == incident.id,
                                                        IncidentEntry.kind == kind).values(at=at))
