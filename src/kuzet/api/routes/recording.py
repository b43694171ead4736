"""API of the recording capability."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["recording"])
