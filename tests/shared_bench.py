"""Where the benchmark shapes and components (the project's benchmark definitions, copied into the
repository) live, found the way ``bench/run.py`` finds them (its ``BENCH_DIR``: ``bench/`` in this
repository; nothing outside the repository is needed)."""

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
    folder: Path = run.BENCH_DIR
    return folder
