"""The callers' grants cached between requests (issue 16, point 3): correct in one process, across processes sharing
a database and the bus, and never used past a grant's end."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.domain.access import GrantWindow, HeldGrant, Reach, Right
from kuzet.installation import Installation
from kuzet.services import access, accounts
from kuzet.services.access.cache import ReachCache, cache_of, watch_bus
from kuzet.services.accounts import token_digest
from kuzet.services.audit import SYSTEM
from kuzet.services.grants import create_grant, revoke_grant
from kuzet.store.bus import connect_bus
from kuzet.store.db import utcnow
from kuzet.store.models import ApiToken, Camera, Grant, User
from tests.conftest import NATS_URL, _unavailable, login, make_installation


def _seed(inst: Installation) -> dict[str, int]:
    from kuzet.services.demo import seed_demo_city

    with inst.db.session() as session:
        city = seed_demo_city(session, inst.keys)
    return city.cameras


def test_a_revoked_grant_stops_the_next_request(inst: Installation, client: TestClient) -> None:
    """In one process the cache is dropped by the commit that changes a grant: no request after it uses the old."""
    cameras = _seed(inst)
    headers = login(client, "school7")
    camera = cameras["d1school1"]
    assert client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 200
    assert client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 200  # now from the cache
    cache = cache_of(inst.db.engine)
    assert cache is not None and cache.hits >= 1
    with inst.db.session() as session:
        org = session.scalar(select(User.organisation_id).where(User.username == "school7"))
        for grant in session.scalars(select(Grant).where(Grant.organisation_id == org, Grant.revoked_at.is_(None))):
            revoke_grant(session, SYSTEM, grant)
    assert client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 404
    # and a new grant shows at once
    with inst.db.session() as session:
        create_grant(session, SYSTEM, organisation_id=org, camera_id=camera, rights=["view_live"],
                     legal_basis="test")
    assert client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 200


def test_membership_change_is_a_new_caller(inst: Installation, client: TestClient) -> None:
    cameras = _seed(inst)
    headers = login(client, "duty1")
    camera = cameras["d1street1"]
    assert client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 200
    with inst.db.session() as session:
        user = session.scalar(select(User).where(User.username == "duty1"))
        user.organisation_id = None
    assert client.get(f"/api/v1/cameras/{camera}", headers=headers).status_code == 404


def test_a_cached_reach_is_never_used_past_a_grants_end() -> None:
    """The cache drops an entry at the next start or end of one of its grants, and a reach itself answers by the
    windows at the instant asked: no sleeping needed to show either."""
    now = utcnow()
    ends = now + timedelta(minutes=5)
    grant = HeldGrant(id=1, rights=frozenset({Right.VIEW_LIVE}), place_path=None, camera_id=7,
                      window=GrantWindow(None, ends, None), archive_days=None, legal_basis="x")
    later = HeldGrant(id=2, rights=frozenset({Right.EXPORT}), place_path="/1/", camera_id=None,
                      window=GrantWindow(now + timedelta(minutes=1), None, None), archive_days=None, legal_basis="y")
    reach = Reach((grant, later))
    assert reach.camera_rights(7, "/2/", now) == {Right.VIEW_LIVE}
    assert reach.camera_rights(7, "/2/", ends) == frozenset()
    assert reach.camera_rights(8, "/1/3/", now) == frozenset()
    assert reach.camera_rights(8, "/1/3/", now + timedelta(minutes=2)) == {Right.EXPORT}
    assert reach.changes_after(now) == now + timedelta(minutes=1)
    cache = ReachCache(max_age=3600)
    cache.put((1, None), Reach((grant,)), now, cache.generation)
    assert cache.get((1, None), now + timedelta(minutes=4)) is not None
    assert cache.get((1, None), ends) is None  # gone at the grant's end, whatever the age limit
    # a reach loaded while something changed is not stored
    generation = cache.generation
    cache.invalidate()
    cache.put((1, None), reach, now, generation)
    assert cache.get((1, None), now) is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_api_processes_share_grant_changes_over_the_bus(backend: str, tmp_path: Path) -> None:
    """Two installations on one database and one NATS, each with its own cache (as two API processes): a grant
    revoked through one is refused by the other as soon as the bus message arrives (the age limit is set out of
    reach, so only the message can have done it)."""
    first, schema = make_installation(backend, tmp_path / "data")
    settings = first.settings
    second = Installation.open(settings=settings)
    try:
        cameras = _seed(first)
        camera_id = cameras["d1school1"]

        async def scenario() -> None:
            try:
                bus_a, bus_b = await connect_bus(NATS_URL), await connect_bus(NATS_URL)
            except Exception as exc:  # noqa: BLE001
                _unavailable("NATS", exc)
            cache_a, cache_b = cache_of(first.db.engine), cache_of(second.db.engine)
            assert cache_a is not None and cache_b is not None and cache_a is not cache_b
            cache_b.max_age = 3600.0
            cache_b.stamp = None  # not the machine's stamp file either (the next test shows that one)
            sub_a = await watch_bus(cache_a, bus_a, "first")
            sub_b = await watch_bus(cache_b, bus_b, "second")
            try:
                def rights_in_second() -> frozenset[Right]:
                    with second.db.session() as session:
                        user = session.scalar(select(User).where(User.username == "school7"))
                        return access.camera_rights(session, user, session.get(Camera, camera_id))

                assert Right.VIEW_LIVE in await asyncio.to_thread(rights_in_second)
                assert Right.VIEW_LIVE in await asyncio.to_thread(rights_in_second)
                hits, seen = cache_b.hits, cache_b.invalidations

                def revoke_in_first() -> None:
                    with first.db.session() as session:
                        org = session.scalar(select(User.organisation_id).where(User.username == "school7"))
                        for grant in session.scalars(select(Grant).where(Grant.organisation_id == org)):
                            revoke_grant(session, SYSTEM, grant)

                await asyncio.to_thread(revoke_in_first)
                for _ in range(200):  # the message's arrival, not a time, ends the wait
                    if cache_b.invalidations > seen:
                        break
                    await asyncio.sleep(0.05)
                assert cache_b.invalidations > seen, "the second process never heard of the change"
                assert cache_b.hits >= hits
                assert await asyncio.to_thread(rights_in_second) == frozenset()
            finally:
                await sub_a.unsubscribe()
                await sub_b.unsubscribe()
                await bus_a.close()
                await bus_b.close()

        asyncio.run(scenario())
    finally:
        second.close()
        first.close()
        if schema:
            schema.drop()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_of_one_machine_share_grant_changes_without_a_bus(backend: str, tmp_path: Path) -> None:
    """Two installations on one data directory and database with no bus between them (the embedded default's API
    worker processes beside the recorder's, or a CLI command beside `kuzet serve`): a grant revoked through one is
    refused by the other at its very next lookup, through the machine's stamp file (the age limit is out of reach)."""
    first, schema = make_installation(backend, tmp_path / "data")
    second = Installation.open(settings=first.settings)
    try:
        camera_id = _seed(first)["d1school1"]
        cache_b = cache_of(second.db.engine)
        assert cache_b is not None and cache_b.on_change is None
        cache_b.max_age = 3600.0

        def rights_in_second() -> frozenset[Right]:
            with second.db.session() as session:
                user = session.scalar(select(User).where(User.username == "school7"))
                return access.camera_rights(session, user, session.get(Camera, camera_id))

        assert Right.VIEW_LIVE in rights_in_second()
        hits = cache_b.hits
        assert Right.VIEW_LIVE in rights_in_second()
        assert cache_b.hits > hits  # served from the second's cache
        with first.db.session() as session:
            org = session.scalar(select(User.organisation_id).where(User.username == "school7"))
            for grant in session.scalars(select(Grant).where(Grant.organisation_id == org)):
                revoke_grant(session, SYSTEM, grant)
        assert rights_in_second() == frozenset()
        # and a grant given through the first shows in the second at once too
        with first.db.session() as session:
            org = session.scalar(select(User.organisation_id).where(User.username == "school7"))
            create_grant(session, SYSTEM, organisation_id=org, camera_id=camera_id, rights=["view_live"],
                         legal_basis="test")
        assert Right.VIEW_LIVE in rights_in_second()
        assert (first.settings.data_dir / "access.changed").stat().st_mode & 0o777 != 0  # the stamp is a file
    finally:
        second.close()
        first.close()
        if schema:
            schema.drop()


# --- token holders: a request signs in from the cache, never past a revocation, a deactivation or an expiry ----------

def test_a_cached_token_is_refused_at_the_next_request_after_logout_or_deactivation(
        inst: Installation, client: TestClient) -> None:
    """The token's holder is cached after the first request; logging out, and deactivating the user, each refuse the
    very next request (the commits drop the cache); the token's last-use time drops nothing."""
    _seed(inst)
    cache = cache_of(inst.db.engine)
    assert cache is not None
    headers = login(client, "duty1")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert cache.stats()["tokens"] == 1
    invalidations = cache.invalidations
    digest = token_digest(_bearer(headers))
    cache.token(digest, utcnow()).last_used_at = utcnow() - timedelta(hours=1)  # its last use is due to be noted
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    with inst.db.session() as session:
        noted = session.scalar(select(ApiToken.last_used_at).where(ApiToken.token_hash == digest))
    assert noted is not None and utcnow() - noted < timedelta(minutes=1)
    assert cache.invalidations == invalidations and cache.stats()["tokens"] == 1  # noting it dropped nothing
    assert client.post("/api/v1/auth/logout", headers=headers).status_code in (200, 204)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401

    headers = login(client, "duty1")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    with inst.db.session() as session:
        session.scalar(select(User).where(User.username == "duty1")).is_active = False
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_a_cached_token_is_refused_past_its_expiry_and_each_request_gets_its_own_user(inst: Installation) -> None:
    _seed(inst)
    with inst.db.session() as session:
        user = session.scalar(select(User).where(User.username == "duty1"))
        issued = accounts.create_personal_token(session, user, "test", days=1)
        token = issued.token
    first = accounts.authenticate_reading(inst.db, token)
    second = accounts.authenticate_reading(inst.db, token)  # from the cache
    assert first is not None and second is not None and first is not second and second.username == "duty1"
    cache = cache_of(inst.db.engine)
    holder = cache.token(token_digest(token), utcnow())
    assert holder is not None and holder.expires_at is not None
    assert cache.token(token_digest(token), holder.expires_at) is None  # dropped at the expiry, whatever its age
    with inst.db.session() as session:
        session.merge(second)  # a request's own user merges into a session like a loaded one


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_token_revoked_by_another_process_is_refused_at_the_next_lookup(backend: str, tmp_path: Path) -> None:
    """A CLI command or another API process beside this one revokes a token: this process's cached holder is dropped
    at its next lookup (the machine's stamp file), long before the age limit."""
    first, schema = make_installation(backend, tmp_path / "data")
    second = Installation.open(settings=first.settings)
    try:
        _seed(first)
        with first.db.session() as session:
            user = session.scalar(select(User).where(User.username == "duty1"))
            token = accounts.create_personal_token(session, user, "test").token
        cache_b = cache_of(second.db.engine)
        cache_b.max_age = 3600.0
        assert accounts.authenticate_reading(second.db, token) is not None
        assert cache_b.token(token_digest(token), utcnow()) is not None
        with first.db.session() as session:
            user = session.scalar(select(User).where(User.username == "duty1"))
            assert accounts.revoke(session, token, SYSTEM)
        assert accounts.authenticate_reading(second.db, token) is None
    finally:
        second.close()
        first.close()
        if schema:
            schema.drop()


def _bearer(headers: dict[str, str]) -> str:
    return headers["Authorization"].split(" ", 1)[1]
