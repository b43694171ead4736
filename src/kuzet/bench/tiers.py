"""``kuzet bench tiers``: a simulated week of an entrance camera thinned by a storage tier.

The week is generated, not recorded in real time: one index row and one file per minute (sparse files of the real
size, so a week takes no disk), and the motion events an entrance sees — people passing a few times an hour by day,
more in the morning and evening rush, almost nobody at night, now and then a false trigger. The size of a minute
comes from real encodes made in the same run: ten seconds of real CCTV footage of people walking (``people``
scene; FFmpeg's test pattern where the footage is absent) and ten seconds of its first picture held still, both
with the same mild sensor noise and H.264 720p as an entrance camera sends it (CRF 23 capped at 2 Mbit/s), times
six.

Then the real retention pass (``Retention.run``) thins the week, and the result is checked: every minute with
motion still has its file, and the bytes kept are compared with the week before thinning (the goal: at least 60 %
fewer) and with the ceiling any whole-minute policy could reach (only the minutes an event touches, no padding).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

PEOPLE_PER_HOUR = {  # local hour → people passing the entrance per hour (Poisson)
    **{h: 0.3 for h in range(0, 6)}, 6: 2, 7: 8, 8: 10, 9: 5, 10: 3, 11: 3, 12: 4, 13: 4, 14: 3, 15: 3, 16: 4,
    17: 6, 18: 9, 19: 8, 20: 6, 21: 4, 22: 2, 23: 1}
FALSE_TRIGGERS_PER_DAY = 6  # headlights, a cat, the door closing by itself


def _encode_minute(ffmpeg: str, source: list[str], work: Path, name: str) -> int:
    """Bytes of one minute of this source as an entrance camera encodes it (ten real seconds, times six)."""
    out = work / f"{name}.mp4"
    subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *source, "-t", "10",
                    "-vf", "scale=1280:720,format=yuv420p,noise=alls=2:allf=t",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-maxrate", "2M", "-bufsize", "4M",
                    "-g", "50", "-r", "25", "-an", str(out)], check=True, timeout=600)
    return out.stat().st_size * 6


def minute_sizes(ffmpeg: str, work: Path) -> tuple[int, int, str]:
    """(bytes of a minute with people, bytes of a quiet minute, what the footage was)."""
    from kuzet.services.simulator.clips import FOOTAGE, media_dir

    media = media_dir()
    footage = media / FOOTAGE if media and (media / FOOTAGE).exists() else None
    if footage is not None:
        busy = ["-stream_loop", "-1", "-i", str(footage)]
        still = work / "still.png"
        subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(footage), "-frames:v", "1",
                        str(still)], check=True, timeout=120)
        quiet = ["-loop", "1", "-i", str(still)]
        what = f"real CCTV footage ({FOOTAGE})"
    else:
        busy = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"]
        quiet = ["-f", "lavfi", "-i", "color=c=gray:size=1280x720:rate=25"]
        what = "FFmpeg test pattern (no CCTV footage found)"
    return _encode_minute(ffmpeg, busy, work, "busy"), _encode_minute(ffmpeg, quiet, work, "quiet"), what


def simulated_events(start: datetime, days: int, timezone: str, seed: int = 13) -> list[tuple[datetime, datetime]]:
    """Motion intervals of an entrance camera over ``days`` from ``start`` (UTC), reproducible."""
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    events: list[tuple[datetime, datetime]] = []
    hour = start
    while hour < start + timedelta(days=days):
        rate = PEOPLE_PER_HOUR[hour.astimezone(tz).hour]
        t = hour
        while True:
            t += timedelta(seconds=rng.expovariate(rate / 3600))
            if t >= hour + timedelta(hours=1):
                break
            events.append((t, t + timedelta(seconds=rng.uniform(8, 40))))  # walking to the door, or out
        hour += timedelta(hours=1)
    for day in range(days):
        for _ in range(FALSE_TRIGGERS_PER_DAY):
            t = start + timedelta(days=day, seconds=rng.uniform(0, 86400))
            events.append((t, t + timedelta(seconds=rng.uniform(1, 4))))
    return sorted(events)


def run_tiers_benchmark(days: int = 7, full_days: int = 7, motion_days: int = 30, progress=None) -> dict:  # noqa: ANN001
    from sqlalchemy import insert, select

    from kuzet.config import load_settings
    from kuzet.installation import Installation
    from kuzet.services.audit import SYSTEM
    from kuzet.services.cameras import create_camera
    from kuzet.services.places import create_place
    from kuzet.services.recording.ffmpeg import ffmpeg_binary
    from kuzet.services.recording.retention import Retention
    from kuzet.services.recording.segments import relative_path
    from kuzet.services.recording.tiers import set_camera_tier
    from kuzet.store.models.operations import Event
    from kuzet.store.models.recording import Recording

    def say(text: str) -> None:
        if progress is not None:
            progress.print(text)

    work = Path(tempfile.mkdtemp(prefix="kuzet-tiers-"))
    try:
        say("encoding a busy and a quiet minute to measure their sizes…")
        busy_bytes, quiet_bytes, footage = minute_sizes(ffmpeg_binary(), work)
        inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(work / "data")}))
        inst.init()
        inst.settings.storage.min_free_bytes = 0
        week_start = datetime(2026, 3, 2, tzinfo=ZoneInfo(inst.settings.timezone)).astimezone(UTC)
        now = week_start + timedelta(days=days + full_days)  # the whole week has just left the full window
        events = simulated_events(week_start, days, inst.settings.timezone)
        with inst.db.session() as session:
            district = create_place(session, SYSTEM, "district", "Bench")
            camera = create_camera(session, SYSTEM, inst.keys, name="entrance", kind="entrance",
                                   place_id=district.id, main_url="rtsp://192.0.2.1/bench")
            camera_id = camera.id
            set_camera_tier(session, SYSTEM, camera, full_days, motion_days)
        say(f"generating {days * 1440} one-minute files and {len(events)} motion events…")
        busy_minutes: set[datetime] = set()
        for s, e in events:
            m = s.replace(second=0, microsecond=0)
            while m < e:
                busy_minutes.add(m)
                m += timedelta(minutes=1)
        root = inst.settings.recordings_path
        rows, before = [], 0
        for i in range(days * 1440):
            t = week_start + timedelta(minutes=i)
            size = busy_bytes if t in busy_minutes else quiet_bytes
            rel = relative_path(camera_id, t)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(root / rel, "wb") as f:
                f.truncate(size)  # sparse: the size is real, the disk is not used
            rows.append({"camera_id": camera_id, "path": rel, "start_at": t, "end_at": t + timedelta(minutes=1),
                         "bytes": size, "state": "closed", "stream": "main", "keyframes": b""})
            before += size
        with inst.db.session() as session:
            session.execute(insert(Recording), rows)
            session.execute(insert(Event), [{"camera_id": camera_id, "kind": "motion", "start_at": s, "end_at": e}
                                            for s, e in events])
        say("thinning with the retention pass…")
        started = time.perf_counter()
        report = Retention(inst.settings, inst.db).run(now=now)
        seconds = time.perf_counter() - started
        with inst.db.session() as session:
            started = time.perf_counter()
            list(session.execute(select(Recording.id, Recording.start_at, Recording.bytes)))
            with_events = list(session.execute(select(Event.start_at, Event.end_at)))
            read_seconds = time.perf_counter() - started
            kept = {r.start_at: r.bytes for r in session.execute(select(Recording.start_at, Recording.bytes))}
        after = sum(kept.values())
        lost = sorted(m for m in busy_minutes if m not in kept)
        ideal = sum(busy_bytes for _ in busy_minutes)
        inst.close()
        month = 30 / days
        reduction = 1 - after / before
        full_part = min(full_days, 30)
        policy_month = before / days * full_part + after / days * max(0, min(30 - full_part, motion_days))
        return {
            "benchmark": "tiers", "days": days, "policy": {"full_days": full_days, "motion_days": motion_days},
            "minute_bytes": {"busy": busy_bytes, "quiet": quiet_bytes, "footage": footage},
            "events": len(events), "motion_minutes": len(busy_minutes), "minutes": days * 1440,
            "bytes_before": before, "bytes_after": after, "reduction": round(reduction, 4), "goal_reduction": 0.6,
            "meets_goal": reduction >= 0.6 and not lost,
            "motion_minutes_lost": len(lost),
            "files_kept": len(kept), "files_deleted": report.by_reason.get("tier", 0),
            # A camera-month (30 days) of this activity: everything kept; only what thinning keeps; and a month
            # held under the policy (its first full_days in full, the rest thinned).
            "camera_month_bytes": {"everything": round(before * month), "thinned": round(after * month),
                                   f"policy_{full_days}_full_then_thinned": round(policy_month)},
            "ceiling": {"motion_minutes_only_bytes": ideal,
                        "reduction": round(1 - ideal / before, 4),
                        "note": "only the minutes an event touches, no padding: the most any whole-minute policy "
                                "can save"},
            "retention_pass_seconds": round(seconds, 3),
            "ceiling_read_index_seconds": round(read_seconds, 3), "events_read": len(with_events),
            "database": "sqlite",
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
