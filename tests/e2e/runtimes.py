"""How the end-to-end suite gets an engine on each runtime (see conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import rattan

RUNTIMES = ("embedded",)  # postgres and celery join when their backends land
COMPONENTS = ["e2e_components"]


def selected_runtimes() -> list[str]:
    chosen = [
        r.strip() for r in os.environ.get("RATTAN_TEST_RUNTIME", ",".join(RUNTIMES)).split(",") if r.strip()
    ]
    unknown = sorted(set(chosen) - set(RUNTIMES))
    if unknown:
        raise ValueError(f"RATTAN_TEST_RUNTIME names unknown runtimes {unknown}: use {', '.join(RUNTIMES)}")
    return chosen


@dataclass
class Runtime:
    """One runtime: ``engine`` is what the tests drive (the same for every test of a module)."""

    name: str
    engine: rattan.Engine
    distributed: bool = False  # components run in other processes than the test
    extra: dict[str, object] = field(default_factory=dict)


@contextmanager
def open_runtime(name: str, folder: Path) -> Iterator[Runtime]:
    if name == "embedded":
        engine = rattan.Engine(str(folder / "e2e.db"), component_modules=COMPONENTS)
        try:
            yield Runtime(name, engine)
        finally:
            engine.close(timeout=10)
        return
    raise NotImplementedError(name)
