"""What each capability adds to the demo.

A capability with demo content has a module ``kuzet.services.<capability>.demo`` with
``seed(inst, city)`` (called once, right after the demo city is created) and/or ``running(inst)``, a context manager
for processes the demo runs beside the server (the camera simulator, …).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from kuzet.installation import Installation
from kuzet.runtime import CAPABILITIES, capability_module
from kuzet.services.demo import DemoCity


def seed_capabilities(inst: Installation, city: DemoCity) -> None:
    for capability in CAPABILITIES:
        module = capability_module(capability, "demo")
        if module is not None and hasattr(module, "seed"):
            module.seed(inst, city)


@contextmanager
def demo_runtime(inst: Installation) -> Iterator[None]:
    with ExitStack() as stack:
        for capability in CAPABILITIES:
            module = capability_module(capability, "demo")
            if module is not None and hasattr(module, "running"):
                stack.enter_context(module.running(inst))
        yield
