"""What routes ask of services instead of doing themselves (issue 14): the one main/sub stream resolution, the photo
store of safe-yard passports, archive files served through the storage interface, evidence bundles on disk."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from starlette.requests import Request

from kuzet.api.routes.watching import _token_query
from kuzet.services.operations.analysis import plan_for
from kuzet.services.recording.storage import (
    ArchiveStore,
    RecordingUnavailable,
    serve_recording,
)
from kuzet.services.safeyard.photos import (
    MAX_BYTES,
    PhotoError,
    PhotoMissing,
    PhotoStore,
    content_type,
)
from kuzet.services.watching.evidence import bundle_file
from kuzet.services.watching.streams import Purpose, resolve_stream

WITH_SUB = SimpleNamespace(sub_url="rtsp://cam/sub")
NO_SUB = SimpleNamespace(sub_url=None)


# --- one main/sub resolution ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("camera,requested,purpose,expected", [
    # a camera without a sub stream serves main for everything
    (NO_SUB, "sub", Purpose.TILE, "main"),
    (NO_SUB, "sub", Purpose.VIEW, "main"),
    (NO_SUB, "auto", Purpose.ANALYSIS, "main"),
    (NO_SUB, "auto", Purpose.TILE, "main"),
    (SimpleNamespace(sub_url=""), "sub", Purpose.VIEW, "main"),
    # an explicit request is honoured when the camera has that stream
    (WITH_SUB, "sub", Purpose.VIEW, "sub"),
    (WITH_SUB, "sub", Purpose.TILE, "sub"),
    (WITH_SUB, "main", Purpose.TILE, "main"),
    (WITH_SUB, "main", Purpose.ANALYSIS, "main"),
    (WITH_SUB, "sub", Purpose.PLATES, "sub"),  # the operator chose it (a camera whose sub stream is large enough)
    # auto by purpose: plates need main; analysis and tiles take sub; a viewer gets main
    (WITH_SUB, "auto", Purpose.PLATES, "main"),
    (WITH_SUB, "auto", Purpose.ANALYSIS, "sub"),
    (WITH_SUB, "auto", Purpose.TILE, "sub"),
    (WITH_SUB, "auto", Purpose.VIEW, "main"),
    # anything unknown counts as main
    (WITH_SUB, "bogus", Purpose.TILE, "main"),
    # the answer itself instead of a camera
    (True, "sub", Purpose.VIEW, "sub"),
    (False, "sub", Purpose.VIEW, "main"),
])
def test_stream_resolution_rules(camera, requested: str, purpose: Purpose, expected: str) -> None:  # noqa: ANN001
    assert resolve_stream(camera, requested, purpose) == expected


def _row(**values) -> SimpleNamespace:  # noqa: ANN003
    base = {"motion": True, "fps": 5.0, "sensitivity": 60, "min_area": 0.002, "zones": [], "objects": False,
            "detector": "hog", "anpr": False, "stream": "auto"}
    return SimpleNamespace(**{**base, **values})


def test_the_analysis_plan_uses_the_same_resolution() -> None:
    road = SimpleNamespace(id=1, kind="road", sub_url="rtsp://x/sub")
    yard = SimpleNamespace(id=2, kind="yard", sub_url="rtsp://x/sub")
    assert plan_for(road, None, True).stream == "main"  # plates on a road camera: main
    assert plan_for(yard, None, True).stream == "sub"  # motion only: sub
    assert plan_for(yard, None, False).stream == "main"  # no sub stream: main
    assert plan_for(yard, _row(stream="main"), True).stream == "main"  # explicit
    assert plan_for(yard, _row(stream="sub"), False).stream == "main"  # sub asked for, none there
    assert plan_for(road, _row(anpr=True, stream="auto"), True).stream == "main"
    assert plan_for(road, _row(anpr=True, stream="sub"), True).stream == "sub"
    assert plan_for(yard, _row(motion=False), True) is None


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": query.encode()})


def test_a_sub_stream_playlist_names_the_sub_streams_segments() -> None:
    assert _token_query(_request("")) == ""
    assert _token_query(_request("token=abc"), "main") == "?token=abc"
    assert _token_query(_request("token=abc"), "sub") == "?token=abc&stream=sub"
    assert _token_query(_request(""), "sub") == "?stream=sub"


# --- archive files through the storage interface --------------------------------------------------------------------

def test_a_local_recording_is_served_as_its_file_and_a_deleted_one_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "cam1").mkdir()
    (tmp_path / "cam1" / "a.mp4").write_bytes(b"video")
    store = ArchiveStore(tmp_path)
    row = SimpleNamespace(path="cam1/a.mp4", object_key=None)
    assert serve_recording(store.source_for(row), None) == tmp_path / "cam1" / "a.mp4"
    with pytest.raises(RecordingUnavailable):
        serve_recording(store.source("cam1/gone.mp4"), "bytes=0-1")


def test_an_evidence_bundle_is_found_only_when_done_and_on_disk(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "ab.zip").write_bytes(b"PK")
    done = SimpleNamespace(state="done", path="exports/ab.zip")
    assert bundle_file(tmp_path, done) == tmp_path / "exports" / "ab.zip"
    assert bundle_file(tmp_path, SimpleNamespace(state="running", path=None)) is None
    assert bundle_file(tmp_path, SimpleNamespace(state="done", path="exports/gone.zip")) is None


# --- the photo store ------------------------------------------------------------------------------------------------

def _image(fmt: str, width: int = 640, height: int = 480) -> bytes:
    image = np.full((height, width, 3), 200, np.uint8)
    cv2.rectangle(image, (10, 10), (width // 2, height // 2), (40, 90, 160), -1)
    ok, data = cv2.imencode(fmt, image)
    assert ok
    return data.tobytes()


def test_photo_store_saves_opens_and_deletes(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    path, thumb = store.save(7, _image(".png"))
    assert path.startswith("safeyard/7/") and thumb.endswith("-thumb.jpg")
    photo = SimpleNamespace(path=path, thumbnail=thumb)
    full = cv2.imdecode(np.frombuffer(store.open(photo), np.uint8), cv2.IMREAD_COLOR)
    small = cv2.imdecode(np.frombuffer(store.open(photo, thumbnail=True), np.uint8), cv2.IMREAD_COLOR)
    assert full.shape[:2] == (480, 640) and small.shape[1] == 320
    assert content_type(store.open(photo)) == "image/jpeg"  # always re-encoded as JPEG
    store.delete(photo)
    store.delete(photo)  # already gone: no error
    with pytest.raises(PhotoMissing):
        store.open(photo)


def test_photo_store_takes_only_jpeg_or_png_within_the_limits(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path)
    assert content_type(_image(".jpg")) == "image/jpeg" and content_type(_image(".png")) == "image/png"
    for data in (b"", b"not an image", _image(".bmp"), b"GIF89a" + b"\0" * 100,
                 b"\xff\xd8\xff" + b"\0" * 100):  # a JPEG's magic but not a picture
        with pytest.raises(PhotoError):
            store.save(1, data)
    with pytest.raises(PhotoError, match="20 MB"):
        store.save(1, b"\xff\xd8\xff" + b"\0" * MAX_BYTES)
    bomb = bytearray(_image(".png", 16, 16))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR says 100000 x 100000
    with pytest.raises(PhotoError, match="too large"):
        store.save(1, bytes(bomb))
    assert not (tmp_path / "safeyard" / "1").exists() or not any((tmp_path / "safeyard" / "1").iterdir())


def test_photo_store_never_follows_a_path_outside_it(tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(b"x")
    store = PhotoStore(tmp_path / "root")
    with pytest.raises(PhotoMissing):
        store.open(SimpleNamespace(path="../secret.jpg", thumbnail="../secret.jpg"))
    with pytest.raises(PhotoMissing):
        store.open(SimpleNamespace(path="cam1/a.mp4", thumbnail=None))  # a recording, not a photo
