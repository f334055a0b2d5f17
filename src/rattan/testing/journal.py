"""A durable journal for crash tests: user code appends one line per step it begins or ends, and
the test reads the file after SIGKILLs to see what ran where (and what ran twice)."""

from __future__ import annotations

import os


def append(env_var: str, line: str) -> None:
    """Append ``line`` (with its newline) to the file ``env_var`` names, and fsync it; nothing when
    the variable is unset. One ``os.write`` on an O_APPEND descriptor: concurrent writers in
    other processes never interleave inside a line (a kill may leave the last one torn)."""
    path = os.environ.get(env_var)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
