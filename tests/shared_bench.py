"""Where the benchmark shapes and components shared with the project live: ``$RATTAN_BENCH_SHARED``,
else ``shared/bench`` beside the repository (the layout CI uses), as for ``bench/run.py``."""

from __future__ import annotations

import os
from pathlib import Path

ENV_SHARED = "RATTAN_BENCH_SHARED"


def bench_dir() -> Path:
    env = os.environ.get(ENV_SHARED)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "bench"
