"""A ``rattan worker`` subprocess for tests and benchmarks (``python -m rattan.cli worker ...``):
started with the given arguments and environment, ready once it prints ``rattan worker ready``,
stopped with SIGTERM (a warm shutdown) or killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

READY_SECONDS = 60.0


def worker_env(*paths: Path | str, **extra: str) -> dict[str, str]:
    """This process's environment with ``paths`` first on PYTHONPATH (where the worker finds the
    component modules it is told to load) and ``extra`` set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


class WorkerProcess:
    """A ``rattan worker`` subprocess and the file its stderr goes to."""

    def __init__(
        self, args: list[str], log: Path, env: dict[str, str], cwd: Path | str | None = None
    ) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 (closed in stop / kill)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rattan.cli", "worker", *args],
            stdout=subprocess.PIPE, stderr=self._out, env=env, cwd=None if cwd is None else str(cwd),
        )  # fmt: skip
        self.ready = threading.Event()
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            self.lines.append(line)
            if line.startswith("rattan worker ready"):
                self.ready.set()

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"rattan worker did not start (exit {self.proc.poll()}): {self.stderr()[-3000:]}"
                )

    def stderr(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._close()

    def _close(self) -> None:
        self._reader.join(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._out.close()

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a warm shutdown); SIGKILL after ``timeout``. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._close()
        return int(self.proc.returncode)
