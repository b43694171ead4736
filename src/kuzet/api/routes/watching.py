"""API of the watching capability."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["watching"])
