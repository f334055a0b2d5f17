"""WAL checkpoints on a thread of their own, off the workers' commit path.

Measured on this project's machines (docs/performance.md): appending to the WAL costs several
times more than overwriting a WAL file that is already that long, because every append grows the
file and the file system journals each size change; and a checkpoint's fsync stalls those
appends. So the WAL is rewound (RESTART: copied back, then written again from its start, in
place) whenever it passes WAL_RESTART_BYTES, and otherwise only in a quiet moment (no commit for
QUIET_SECONDS), so a burst of work is not interrupted. PASSIVE checkpoints are never used: they
copy pages but cannot rewind a WAL that a busy writer keeps appending to, so the file would only
grow. A WAL longer than WAL_LIMIT_BYTES (one huge transaction) is truncated to zero instead, and
``journal_size_limit`` caps what a rewind leaves on disk.

"Quiet" is read off the WAL file itself (its modification time), not off this process's own
commits: several processes may write one store, and a process that is idle must not rewind the
WAL in the middle of another one's burst.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

CHECKPOINT_SECONDS = 0.1  # how often the checkpointer looks
QUIET_SECONDS = 0.2  # no commit for this long: quiet enough to checkpoint
WAL_RESTART_BYTES = 32 * 2**20  # past this, rewind the WAL even while commits go on
WAL_LIMIT_BYTES = 64 * 2**20  # a rewound WAL longer than this is truncated to it
CHECKPOINT_WAIT_MS = 2000  # how long a checkpoint waits for the writer or for readers


class Checkpointer:
    def __init__(self, path: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self._wal = f"{path}-wal"
        self._connect = connect
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rattan-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        done = -1  # the WAL's modification time that the last checkpoint covered
        while not self._stop.wait(CHECKPOINT_SECONDS):
            try:
                st = os.stat(self._wal)
                if st.st_mtime_ns == done:
                    continue  # nothing committed since the last checkpoint
                quiet = time.time() - st.st_mtime >= QUIET_SECONDS
                if not quiet and st.st_size < WAL_RESTART_BYTES:
                    continue
                if conn is None:
                    conn = self._connect()
                    # a RESTART holds the write lock while it waits for readers to move on: a
                    # slow reader may delay the writers this long at most (then it tries later)
                    conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
                # a WAL left long by a big transaction (or a long busy spell) is cut back to zero
                big = st.st_size > WAL_LIMIT_BYTES
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)" if big else "PRAGMA wal_checkpoint(RESTART)")
                done = st.st_mtime_ns
            except (sqlite3.Error, OSError):
                pass
        if conn is not None:
            conn.close()
