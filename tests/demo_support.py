"""An installation holding the demo city, with the seeded city at hand for the tests (``inst.city``)."""

from __future__ import annotations

from dataclasses import dataclass

from kuzet.installation import Installation
from kuzet.services.demo import DemoCity


@dataclass
class DemoInstallation(Installation):
    city: DemoCity | None = None  # set right after seeding
