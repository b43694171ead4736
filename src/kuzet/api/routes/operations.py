"""API of the operations capability."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["operations"])
