"""Which of a camera's two streams (``main``, full resolution and recorded; ``sub``, small, opened on demand) a
consumer gets. Every live path (the WebSocket, live HLS, the snapshot, wall tiles, which ask for ``sub``) and the
analysis plan ask here, so the rules live in one place:

- a camera without a sub stream serves its main stream for everything;
- an explicit ``main`` or ``sub`` is honoured when the camera has that stream;
- ``auto`` picks by purpose: plates need pixels (a road camera's sub stream is too small to read them), so plate
  reading gets ``main``; other analysis, snapshots and wall tiles get ``sub``; a viewer's live picture gets ``main``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Protocol

Stream = Literal["main", "sub"]
Requested = Literal["auto", "main", "sub"]


class Purpose(StrEnum):
    """What the stream is for: decides ``auto``."""

    VIEW = "view"  # a viewer's live picture (WebSocket, HLS): full resolution
    TILE = "tile"  # a small picture: wall tiles, snapshots
    ANALYSIS = "analysis"  # motion and objects: the sub stream is enough
    PLATES = "plates"  # reading number plates: main


_AUTO: dict[Purpose, Stream] = {Purpose.VIEW: "main", Purpose.TILE: "sub", Purpose.ANALYSIS: "sub",
                                Purpose.PLATES: "main"}


class HasStreams(Protocol):
    sub_url: str | None


def has_sub_stream(camera: HasStreams) -> bool:
    return bool(camera.sub_url)


def resolve_stream(camera: HasStreams | bool, requested: str = "auto", purpose: Purpose = Purpose.VIEW) -> Stream:
    """The stream to subscribe to. ``camera`` is the camera (its ``sub_url`` says whether it has a sub stream) or
    that answer itself; ``requested`` is ``auto``, ``main`` or ``sub`` (anything else counts as ``main``)."""
    has_sub = camera if isinstance(camera, bool) else has_sub_stream(camera)
    wanted: Stream
    if requested == "auto":
        wanted = _AUTO[Purpose(purpose)]
    else:
        wanted = "sub" if requested == "sub" else "main"
    if wanted == "sub" and not has_sub:
        return "main"
    return wanted
