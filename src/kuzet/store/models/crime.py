"""Tables of the crime capability (see its issue and docs/)."""

from __future__ import annotations

from kuzet.store.models.base import Base  # noqa: F401
