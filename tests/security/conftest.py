"""Prints the security corpus's worst figures at the end of a run (docs/reliability.md quotes them)."""

from __future__ import annotations

from typing import Any

from security_corpus import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    cases = sum(1 for what, _, _ in FIGURES if what == "wall")
    wall = max((f for f in FIGURES if f[0] == "wall"), key=lambda f: f[1], default=None)
    cpu = max((f for f in FIGURES if f[0] == "cpu"), key=lambda f: f[1], default=None)
    peak = max((f for f in FIGURES if f[0] == "peak"), key=lambda f: f[1], default=None)
    terminalreporter.section("security corpus figures")
    terminalreporter.line(f"cases measured: {cases}")
    if wall is not None:
        terminalreporter.line(f"worst wall time: {wall[1]:.3f} s ({wall[2]})")
    if cpu is not None:
        terminalreporter.line(f"worst CPU time: {cpu[1]:.3f} s ({cpu[2]})")
    if peak is not None:
        terminalreporter.line(f"worst allocation peak: {peak[1] / 2**20:.1f} MiB ({peak[2]})")
