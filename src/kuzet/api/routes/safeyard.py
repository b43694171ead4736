"""API of the safeyard capability."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["safeyard"])
