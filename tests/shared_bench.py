"""Where the benchmark shapes and components shared with the project live, found the way
``bench/run.py`` finds them (its ``default_shared``: ``$RATTAN_BENCH_SHARED``, else ``shared/bench``
beside the repository, the layout CI uses)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_RUN = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def bench_dir() -> Path:
    # bench/run.py is a script, not a package: load it by path (it imports only the stdlib at start)
    spec = importlib.util.spec_from_file_location("rattan_bench_run", _RUN)
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    shared: Path = run.default_shared()
    return shared
