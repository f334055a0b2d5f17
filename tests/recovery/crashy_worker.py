"""Child process of the crash-recovery tests: run (or resume) a pipeline set on a SQLite file.

Usage::

    python crashy_worker.py --db PATH --journal PATH --tag TAG [--set mixed] [--stagger S]
                            [--die-after-submit] [--hold] [--max-life S]

Starts ``rattan.Engine`` on ``--db`` (which resumes everything unfinished found there), submits every
pipeline of the set that the store does not hold yet (``stagger`` seconds apart, journaling a
``submitted`` line after each ``run_pipeline`` returned), prints ``ALLDONE`` once every pipeline has
settled and then idles until it is killed or ``--max-life`` runs out. With ``--die-after-submit``
the process SIGKILLs itself right after the first ``run_pipeline`` call returned.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import recovery_components as rc

import rattan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--set", default="mixed")
    ap.add_argument("--stagger", type=float, default=0.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--die-after-submit", action="store_true")
    ap.add_argument("--hold", action="store_true", help="honour the nodes' hold inputs (block there)")
    ap.add_argument("--max-life", type=float, default=60.0)
    args = ap.parse_args(argv)

    os.environ[rc.JOURNAL_ENV] = args.journal
    if args.hold:
        os.environ[rc.HOLD_ENV] = "1"
    deadline = time.monotonic() + args.max_life
    pipes = rc.build_named(args.tag, args.set)
    engine = rattan.Engine(f"sqlite:///{args.db}", components=rc.REG, workers=args.workers)
    print("STARTED", os.getpid(), flush=True)
    for pipe in pipes:
        if engine.has_state(pipe.root_id):
            continue
        engine.run_pipeline(copy.deepcopy(pipe.tree))
        rc.journal(pipe.root_id, "-", "submitted")
        print("SUBMITTED", pipe.root_id, flush=True)
        if args.die_after_submit:
            os.kill(os.getpid(), signal.SIGKILL)
        if args.stagger:
            time.sleep(args.stagger)
    while time.monotonic() < deadline:
        if all(rc.settled(engine, pipe) for pipe in pipes):
            print("ALLDONE", flush=True)
            break
        time.sleep(0.01)
    while time.monotonic() < deadline:  # idle: the parent kills us
        time.sleep(0.05)
    engine.close(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
