"""API of the operations centre's integrations: outgoing webhooks and their delivery log.

Platform admins manage every webhook (platform-wide ones included); organisation and operator admins those of their
own organisation. Everyone else gets 404, as for anything one may not see. The secret is returned once, by POST.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from kuzet.api.deps import Caller, caller, installation
from kuzet.api.errors import ApiError, not_found
from kuzet.api.routes.common import ERRORS, Id, Paging, errors
from kuzet.api.schemas import unset
from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.operations import webhooks as service
from kuzet.store.models import Organisation
from kuzet.store.models.operations import Webhook, WebhookDelivery

router = APIRouter(prefix="/webhooks", tags=["integrations"], responses=ERRORS)
# ["alarm.*", "incident.closed"] or "alarm.*,incident.closed"
Topics = Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)] | Annotated[
    str, Field(max_length=400)]
Secret = Annotated[str, Field(min_length=16, max_length=200, pattern=r"^\S+$")]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=1000)
    topics: Topics = service.DEFAULT_TOPICS
    organisation_id: Id | None = None  # platform admins: None = platform-wide; others: their organisation
    secret: Secret | None = Field(None, description="Leave out to have one generated (recommended)")
    enabled: bool = True


class WebhookPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = unset(min_length=1, max_length=200)
    url: str = unset(min_length=1, max_length=1000)
    topics: Topics = unset()
    enabled: bool = unset()
    secret: Secret = unset(description="A new secret of your choosing; it is not returned")


def webhook_out(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "name": hook.name, "organisation_id": hook.organisation_id, "url": hook.url,
            "topics": service.topic_list(hook.topics), "enabled": hook.enabled, "created_by": hook.created_by,
            "created_at": hook.created_at}


def delivery_out(row: WebhookDelivery) -> dict[str, Any]:
    return {"id": row.id, "webhook_id": row.webhook_id, "message_id": row.message_id, "topic": row.topic,
            "state": row.state, "attempts": row.attempts, "attempts_log": row.attempts_log or [],
            "next_attempt_at": row.next_attempt_at, "created_at": row.created_at, "delivered_at": row.delivered_at,
            "payload": row.payload}


def _may_manage_some(who: Caller) -> bool:
    user = who.user
    return access.is_platform_admin(user) or (user.role in service.MANAGER_ROLES and user.organisation_id is not None)


def _webhook_for(session, who: Caller, webhook_id: int) -> Webhook:  # noqa: ANN001
    hook = session.scalar(service.visible_webhooks(who.user).where(Webhook.id == webhook_id))
    if hook is None:
        raise not_found("webhook not found")
    return hook


def _wake(inst: Installation) -> None:
    running = inst.running.webhooks
    if running is not None:
        running.wake()


@router.get("")
def list_webhooks(paging: Paging = Depends(), who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> dict:
    """The webhooks the caller manages (never their secrets)."""
    if not _may_manage_some(who):
        raise not_found("not found")
    with inst.db.session() as session:
        return paging.page(session, service.visible_webhooks(who.user), webhook_out)


@router.post("", status_code=201)
def add_webhook(body: WebhookIn, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    """Create a webhook. The answer holds ``secret``, the only time it is shown: keep it to verify signatures."""
    if not _may_manage_some(who):
        raise not_found("not found")
    organisation_id = body.organisation_id
    if not access.is_platform_admin(who.user):
        if organisation_id not in (None, who.user.organisation_id):
            raise not_found("organisation not found")
        organisation_id = who.user.organisation_id
    with inst.db.session() as session:
        if organisation_id is not None and session.get(Organisation, organisation_id) is None:
            raise not_found("organisation not found")
        try:
            hook, secret = service.create_webhook(
                session, who.actor, inst.keys, name=body.name, url=body.url, organisation_id=organisation_id,
                topics=body.topics, secret=body.secret, enabled=body.enabled,
                networks=inst.settings.security.webhook_allowed_networks)
        except service.WebhookError as exc:
            raise ApiError(422, str(exc)) from None
        return {**webhook_out(hook), "secret": secret}


@router.get("/{webhook_id}")
def get_webhook(webhook_id: Id, who: Caller = Depends(caller), inst: Installation = Depends(installation)) -> dict:
    with inst.db.session() as session:
        return webhook_out(_webhook_for(session, who, webhook_id))


@router.patch("/{webhook_id}")
def patch_webhook(webhook_id: Id, body: WebhookPatch, who: Caller = Depends(caller),
                  inst: Installation = Depends(installation)) -> dict:
    """Change name, URL, topics, enabled, or set a new secret of your own (a webhook's organisation is fixed)."""
    with inst.db.session() as session:
        hook = _webhook_for(session, who, webhook_id)
        try:
            service.update_webhook(session, who.actor, inst.keys, hook, **body.model_dump(exclude_unset=True),
                                   networks=inst.settings.security.webhook_allowed_networks)
        except service.WebhookError as exc:
            raise ApiError(422, str(exc)) from None
        result = webhook_out(hook)
    _wake(inst)  # enabling a webhook releases its pending deliveries
    return result


@router.delete("/{webhook_id}", status_code=204)
def remove_webhook(webhook_id: Id, who: Caller = Depends(caller),
                   inst: Installation = Depends(installation)) -> Response:
    """Delete a webhook with its delivery log (the audit log keeps what it was)."""
    with inst.db.session() as session:
        service.delete_webhook(session, who.actor, _webhook_for(session, who, webhook_id))
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries")
def list_deliveries(webhook_id: Id, paging: Paging = Depends(),
                    state: Literal["pending", "delivered", "failed"] | None = Query(None),
                    since: datetime | None = None, who: Caller = Depends(caller),
                    inst: Installation = Depends(installation)) -> dict:
    """The delivery log, newest first: each message with its state and every attempt (time, HTTP status, error, ms)."""
    with inst.db.session() as session:
        hook = _webhook_for(session, who, webhook_id)
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
        if state:
            query = query.where(WebhookDelivery.state == state)
        if since is not None:
            if since.tzinfo is None:
                raise ApiError(422, "since: give a time zone (e.g. 2025-01-01T00:00:00Z)")
            query = query.where(WebhookDelivery.created_at >= since)
        return paging.page(session, query.order_by(WebhookDelivery.id.desc()), delivery_out)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(webhook_id: Id, delivery_id: Id, who: Caller = Depends(caller),
              inst: Installation = Depends(installation)) -> dict:
    """Send a message again: a new delivery with the same message id and body, and a fresh set of attempts."""
    with inst.db.session() as session:
        hook = _webhook_for(session, who, webhook_id)
        old = session.get(WebhookDelivery, delivery_id)
        if old is None or old.webhook_id != hook.id:
            raise not_found("delivery not found")
        row = service.redeliver(session, old.id, who.actor)
        result = delivery_out(row)
    _wake(inst)
    return result


@router.post("/{webhook_id}/test", responses=errors(409))
async def test_webhook(webhook_id: Id, who: Caller = Depends(caller),
                       inst: Installation = Depends(installation)) -> dict:
    """Send a ``ping`` now and answer with its delivery after the first attempt (later retries as for any message)."""
    def _queue() -> int:
        with inst.db.session() as session:
            hook = _webhook_for(session, who, webhook_id)
            if not hook.enabled:
                raise ApiError(409, "the webhook is disabled: enable it to test it")
            return service.enqueue_ping(session, hook).id

    def _load(delivery_id: int) -> dict:
        with inst.db.session() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:  # the webhook was deleted meanwhile
                raise not_found("webhook not found")
            return delivery_out(row)

    delivery_id = await asyncio.to_thread(_queue)
    async with service.new_client() as client:
        await service.attempt(inst, delivery_id, client)
    _wake(inst)
    return await asyncio.to_thread(_load, delivery_id)
