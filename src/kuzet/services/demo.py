"""The demo city: a small, clearly fictional part of Kyzylorda with buildings, a school, streets and roads, their
cameras, the telecom, two police duty units, the Operational Control Centre, and demo accounts (password ``demo``).

Seeding is idempotent: a data directory that already holds the demo city is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.domain.access import OrganisationKind, Role
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import create_camera
from kuzet.services.grants import create_grant
from kuzet.services.keys import Keyring
from kuzet.services.places import create_organisation, create_place
from kuzet.store.models import Organisation, User

DEMO_PASSWORD = "demo"

# Each account with its description in the installation's language (users.full_name is data, written once in the
# language the installation is set up in: [general] default_language).
DEMO_ACCOUNTS = [
    ("admin", Role.PLATFORM_ADMIN, ("администратор платформы", "платформа әкімшісі", "platform administrator")),
    ("operator", Role.OPERATOR_ADMIN, ("администратор оператора связи: дома, камеры, исправность",
                                       "байланыс операторының әкімшісі: үйлер, камералар, жарамдылық",
                                       "telecom operator admin: buildings, cameras, health")),
    ("duty1", Role.POLICE_OPERATOR, ("дежурная часть района 1: уличные, дворовые, школьные, подъездные камеры",
                                     "1-аудан кезекші бөлімі: көше, аула, мектеп, кіреберіс камералары",
                                     "duty unit of district 1: its street, yard, school, entrance cameras")),
    ("duty2", Role.POLICE_OPERATOR, ("дежурная часть района 2", "2-аудан кезекші бөлімі", "duty unit of district 2")),
    ("center", Role.POLICE_OPERATOR, ("Центр оперативного управления: все камеры города",
                                      "Жедел басқару орталығы: қаланың барлық камералары",
                                      "Operational Control Centre: every camera of the city")),
    ("inspector1", Role.INSPECTOR, ("участковый инспектор района 1: паспорта безопасных дворов",
                                    "1-ауданның учаскелік инспекторы: қауіпсіз аула паспорттары",
                                    "district inspector of district 1: safe-yard passports")),
    ("inspector2", Role.INSPECTOR, ("участковый инспектор района 2", "2-ауданның учаскелік инспекторы",
                                    "district inspector of district 2")),
    ("analyst", Role.ANALYST, ("аналитик преступности", "қылмыс талдаушысы", "crime analytics")),
    ("resident1", Role.RESIDENT, ("житель дома 1, подъезд 1", "1-үйдің тұрғыны, 1-кіреберіс",
                                  "resident of building 1, entrance 1")),
    ("resident2", Role.RESIDENT, ("житель дома 2, подъезд 1", "2-үйдің тұрғыны, 1-кіреберіс",
                                  "resident of building 2, entrance 1")),
    ("school7", Role.ORGANISATION_ADMIN, ("администратор школы № 7", "№ 7 мектептің әкімшісі",
                                          "administrator of school No. 7")),
    ("responder1", Role.RESPONDER, ("патрульный экипаж района 1", "1-ауданның патрульдік экипажы",
                                    "patrol crew of district 1")),
    ("auditor", Role.AUDITOR, ("надзор: читает журнал аудита", "қадағалау: аудит журналын оқиды",
                               "oversight: reads the audit log")),
]
DESCRIPTION_LANGUAGES = ("ru", "kk", "en")

CITY_CENTRE = (44.8488, 65.4823)  # Kyzylorda


@dataclass
class DemoCity:
    region_id: int = 0
    city_id: int = 0
    districts: list[int] = field(default_factory=list)
    buildings: list[int] = field(default_factory=list)
    entrances: list[int] = field(default_factory=list)
    yards: list[int] = field(default_factory=list)
    schools: list[int] = field(default_factory=list)
    streets: list[int] = field(default_factory=list)
    cameras: dict[str, int] = field(default_factory=dict)  # slug → camera id
    organisations: dict[str, int] = field(default_factory=dict)


def default_stream_urls(index: int, slug: str) -> tuple[str, str | None]:
    """Stream URLs of demo camera number ``index`` (0-based). The simulator (``kuzet sim``) serves these."""
    return f"rtsp://127.0.0.1:8554/cam{index + 1}", f"rtsp://127.0.0.1:8554/cam{index + 1}/sub"


def is_seeded(session: Session) -> bool:
    return session.scalar(select(User).where(User.username == "admin")) is not None


def non_demo_usernames(session: Session) -> list[str]:
    """Accounts that the demo did not make: a database holding any is a real installation, not a demo."""
    demo_names = [username for username, _role, _description in DEMO_ACCOUNTS]
    return list(session.scalars(select(User.username).where(User.username.not_in(demo_names))
                                .order_by(User.username)))


def seed_demo_city(session: Session, keys: Keyring,
                   stream_urls: Callable[[int, str], tuple[str, str | None]] = default_stream_urls,
                   language: str = "ru") -> DemoCity:
    """Create the demo city in the caller's transaction; the accounts' descriptions in ``language``."""
    city = DemoCity()
    lat0, lon0 = CITY_CENTRE
    region = create_place(session, SYSTEM, "region", "Кызылординская область (демо)", lat=lat0, lon=lon0)
    town = create_place(session, SYSTEM, "settlement", "Кызылорда (демо)", parent_id=region.id, lat=lat0, lon=lon0,
                        population=250_000)
    city.region_id, city.city_id = region.id, town.id

    telecom = create_organisation(session, SYSTEM, "Kuzet Telecom (демо)", OrganisationKind.TELECOM_OPERATOR,
                                  place_id=region.id)
    centre = create_organisation(session, SYSTEM, "ЦОУ ДП Кызылординской области (демо)",
                                 OrganisationKind.CONTROL_CENTRE, place_id=region.id)
    security = create_organisation(session, SYSTEM, "Цербер-KZ (демо)", OrganisationKind.SECURITY_FIRM)
    city.organisations.update(telecom=telecom.id, centre=centre.id, security=security.id)

    cam_index = 0

    def camera(slug: str, name: str, kind: str, place_id: int, lat: float, lon: float, bearing: float,
               owner: int, fov: float = 90, radius: float = 30, installed: date | None = None) -> None:
        nonlocal cam_index
        main, sub = stream_urls(cam_index, slug)
        cam = create_camera(session, SYSTEM, keys, name=name, kind=kind, place_id=place_id, main_url=main,
                            sub_url=sub, lat=lat, lon=lon, bearing=bearing, field_of_view=fov, view_radius_m=radius,
                            owner_org_id=owner, retention_days=30, installed_on=installed)
        city.cameras[slug] = cam.id
        cam_index += 1

    for d in (1, 2):
        dlat = lat0 + (0.012 if d == 1 else -0.012)
        dname = "Северный район (демо)" if d == 1 else "Южный район (демо)"
        district = create_place(session, SYSTEM, "district", dname, parent_id=town.id, lat=dlat, lon=lon0,
                                population=120_000 + 10_000 * d)
        city.districts.append(district.id)
        duty = create_organisation(session, SYSTEM, f"ДЧ УП {dname}", OrganisationKind.POLICE_DUTY_UNIT,
                                   place_id=district.id)
        city.organisations[f"duty{d}"] = duty.id
        streets = []
        for s, sname in enumerate(("ул. Абая", "ул. Желтоксан") if d == 1 else ("ул. Айтеке би", "пр. Абылай хана")):
            slat = dlat + 0.002 * (s - 0.5)
            street = create_place(
                session, SYSTEM, "street", f"{sname} ({dname})", parent_id=district.id, lat=slat, lon=lon0,
                geometry={"type": "LineString", "coordinates": [[lon0 - 0.01, slat], [lon0 + 0.01, slat]]},
            )
            streets.append(street)
            city.streets.append(street.id)
        for b in (1, 2):
            number = (d - 1) * 2 + b  # buildings 1..4 across the city
            blat, blon = streets[0].lat + 0.0008, lon0 - 0.006 + 0.004 * b
            building = create_place(session, SYSTEM, "building", f"Дом {number}",
                                    parent_id=streets[0].id, address=f"{streets[0].name.split(' (')[0]}, {10 + b}",
                                    lat=blat, lon=blon)
            city.buildings.append(building.id)
            for e in (1, 2):
                entrance = create_place(session, SYSTEM, "entrance", f"Дом {number}, подъезд {e}",
                                        parent_id=building.id, lat=blat, lon=blon + 0.0003 * (e - 1.5))
                city.entrances.append(entrance.id)
                camera(f"b{number}e{e}", f"Дом {number}, подъезд {e}", "entrance", entrance.id, blat,
                       blon + 0.0003 * (e - 1.5), 180, telecom.id, fov=80, radius=10,
                       installed=date(2023, 3, 1))
            yard = create_place(session, SYSTEM, "yard", f"Двор дома {number}", parent_id=building.id,
                                lat=blat + 0.0005, lon=blon)
            city.yards.append(yard.id)
            camera(f"b{number}yard", f"Двор дома {number}", "yard", yard.id, blat + 0.0005, blon, 0, telecom.id,
                   fov=100, radius=40, installed=date(2023, 3, 1))
        school = create_place(session, SYSTEM, "school", f"Школа № {7 if d == 1 else 12}", parent_id=streets[1].id,
                              lat=streets[1].lat - 0.001, lon=lon0 + 0.004)
        city.schools.append(school.id)
        school_org = create_organisation(session, SYSTEM, f"Школа № {7 if d == 1 else 12} (демо)",
                                         OrganisationKind.SCHOOL, place_id=school.id)
        city.organisations[f"school{d}"] = school_org.id
        for k, bearing in ((1, 90), (2, 270)):
            camera(f"d{d}school{k}", f"{school.name}, камера {k}", "school", school.id, school.lat, school.lon,
                   bearing, school_org.id, installed=date(2022, 9, 1))
        for k, street in enumerate(streets, 1):
            camera(f"d{d}street{k}", f"{street.name.split(' (')[0]}, перекрёсток", "street", street.id, street.lat,
                   lon0 + 0.002 * k, 90 * k, telecom.id, fov=70, radius=60, installed=date(2024, 5, 1))
        road = create_place(session, SYSTEM, "road_point", f"Въезд в город, {dname}", parent_id=district.id,
                            lat=dlat + (0.01 if d == 1 else -0.01), lon=lon0 + 0.02)
        camera(f"d{d}road", f"{road.name}, номера", "road", road.id, road.lat, road.lon, 0, telecom.id,
               fov=40, radius=25, installed=date(2024, 5, 1))

    # --- grants, each with its legal basis (agreements and subscriptions make theirs below) --------------------
    since = datetime(2024, 1, 1, tzinfo=UTC)
    create_grant(session, SYSTEM, organisation_id=telecom.id, place_id=town.id, rights=["manage", "view_live"],
                 legal_basis="Договор об оказании услуги «Облачное видеонаблюдение» (демо)", valid_from=since)
    for d in (1, 2):
        create_grant(session, SYSTEM, organisation_id=city.organisations[f"school{d}"], place_id=city.schools[d - 1],
                     rights=["view_live", "view_archive", "export", "manage"],
                     legal_basis="Собственник камер (демо)", valid_from=since)
    create_grant(session, SYSTEM, organisation_id=security.id, place_id=city.yards[0],
                 rights=["view_live", "view_archive"],
                 legal_basis="Договор охраны двора дома 1 с «Цербер-KZ» (демо)", valid_from=since)

    # --- accounts ----------------------------------------------------------------------------------------------
    orgs = {
        "operator": telecom.id, "duty1": city.organisations["duty1"], "duty2": city.organisations["duty2"],
        "center": centre.id, "inspector1": city.organisations["duty1"], "inspector2": city.organisations["duty2"],
        "school7": city.organisations["school1"], "responder1": city.organisations["duty1"],
    }
    homes = {"inspector1": city.districts[0], "inspector2": city.districts[1], "duty1": city.districts[0],
             "duty2": city.districts[1], "responder1": city.districts[0],
             "resident1": city.entrances[0], "resident2": city.entrances[2]}
    users: dict[str, User] = {}
    written = DESCRIPTION_LANGUAGES.index(language) if language in DESCRIPTION_LANGUAGES else 0
    for username, role, descriptions in DEMO_ACCOUNTS:
        users[username] = accounts.create_user(
            session, SYSTEM, username, DEMO_PASSWORD, role, full_name=descriptions[written],
            organisation=orgs.get(username), place_id=homes.get(username),
            language=DESCRIPTION_LANGUAGES[written], policy=accounts.DEMO_PASSWORD_POLICY,
        )
    # The telecom's business (services/cloud/demo.py): the residents watch their entrance and yard through their
    # flats' subscriptions; each district's cameras reach its duty unit, and the city's the control centre, through
    # routing agreements. Both make and end their grants themselves.
    from kuzet.services.cloud.demo import seed_business

    seed_business(session, city, users, since)
    return city


def demo_organisation(session: Session, key: str) -> Organisation | None:
    names = {"telecom": "Kuzet Telecom (демо)"}
    return session.scalar(select(Organisation).where(Organisation.name == names.get(key, key)))
