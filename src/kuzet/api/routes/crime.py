"""API of the crime capability."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["crime"])
