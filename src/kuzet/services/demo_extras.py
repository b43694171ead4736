"""What each capability adds to the demo.

A capability with demo content names its module in ``kuzet.capabilities`` (``demo``); it has
``seed(inst, city)`` (called once, right after the demo city is created) and/or ``running(inst)``, a context manager
for processes the demo runs beside the server (the camera simulator, …).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from kuzet import capabilities
from kuzet.installation import Installation
from kuzet.services.demo import DemoCity


def seed_capabilities(inst: Installation, city: DemoCity) -> None:
    for module in capabilities.demo_modules():
        if hasattr(module, "seed"):
            module.seed(inst, city)


@contextmanager
def demo_runtime(inst: Installation) -> Iterator[None]:
    with ExitStack() as stack:
        for module in capabilities.demo_modules():
            if hasattr(module, "running"):
                stack.enter_context(module.running(inst))
        yield
