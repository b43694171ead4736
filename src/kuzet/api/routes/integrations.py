"""API of the operations centre's integrations: outgoing webhooks and their delivery log."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["integrations"])
