"""What the distributed tests share: ``rattan worker`` subprocesses (``rattan.testing.worker``)
that load this folder's component modules."""

from __future__ import annotations

from pathlib import Path

from rattan.testing.worker import WorkerProcess
from rattan.testing.worker import worker_env as _worker_env

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"

__all__ = ["HERE", "WorkerProcess", "worker_env"]


def worker_env(**extra: str) -> dict[str, str]:
    return _worker_env(HERE, SRC, **extra)
