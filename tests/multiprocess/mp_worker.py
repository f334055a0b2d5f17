"""Child process of the multi-process tests: a started engine on a shared SQLite store.

Usage::

    python mp_worker.py --db PATH --journal PATH --tag TAG --set NAME
                        [--submit SPEC] [--callbacks SPEC] [--stagger S] [--workers N]
                        [--sweep S] [--go FILE] [--exit-when-done] [--max-life S]

``SPEC`` picks pipelines of the set: ``all``, ``none``, ``A-B`` (indexes A to B-1) or ``I/N`` (those
whose index is I modulo N).

The child prints ``READY`` once imported, waits for ``--go`` to exist (when given), starts
``rattan.Engine`` on ``--db`` (``sweep_seconds`` = ``--sweep``; ``lease_seconds`` stays at its
default) and prints ``STARTED <pid>``. Then, until SIGTERM (or ``--max-life``):

* it submits the ``--submit`` pipelines the store does not hold yet, ``--stagger`` seconds apart,
  journaling a ``submitted`` line after each ``run_pipeline`` returned, and prints ``SUBMITTED``;
* it sends the callbacks of the ``--callbacks`` pipelines: it reads the states of their callback
  activities, and for one RUNNING at version V whose schedule is waiting it calls
  ``engine.callback(node, V, callback_data(seq), idempotency_key=f"{V}:{seq}")`` for every seq
  (a replacement child that sends a callback again is acknowledged and applied once), journaling a
  ``cbsent`` line after each call returned.

Durable timers (node timeouts, timer events) fire in whichever child owns their row: the one whose
unit armed it, or the one that took it over when that child died; a timer event's action
(``mc.TimerCallback``) sends its callback from there, journaling a ``tfired`` line.

On SIGTERM it closes the engine cleanly (``engine.close()``: running work drains, the lease is
given up) and prints ``CLOSED``. With ``--exit-when-done`` it does the same once its submitted
pipelines are FINISHED.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mp_components as mc

import rattan

CALLBACK_PASS = 0.05  # seconds between two looks at the callback activities


def pick(pipes: list[mc.Pipe], spec: str) -> list[mc.Pipe]:
    if spec == "all":
        return list(pipes)
    if spec == "none":
        return []
    if "-" in spec:
        first, end = (int(v) for v in spec.split("-"))
        return [p for p in pipes if first <= p.index < end]
    mine, of = (int(v) for v in spec.split("/"))
    return [p for p in pipes if p.index % of == mine]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--journal", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--set", default="mixed")
    ap.add_argument("--submit", default="none")
    ap.add_argument("--callbacks", default="none")
    ap.add_argument("--stagger", type=float, default=0.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--sweep", type=float, default=0.2)
    ap.add_argument("--go", default=None)
    ap.add_argument("--exit-when-done", action="store_true")
    ap.add_argument("--max-life", type=float, default=240.0)
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    os.environ[mc.JOURNAL_ENV] = args.journal
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.max_life
    pipes = mc.build_named(args.tag, args.set)
    to_submit = pick(pipes, args.submit)
    print("READY", os.getpid(), flush=True)
    if args.go:
        while not os.path.exists(args.go):
            if time.monotonic() > deadline or stop.is_set():
                return 3
            time.sleep(0.001)
    engine = rattan.Engine(
        f"sqlite:///{args.db}", components=mc.REG, workers=args.workers, sweep_seconds=args.sweep
    )
    print("STARTED", os.getpid(), flush=True)
    sender = mc.CallbackSender(engine, pick(pipes, args.callbacks))
    queue = list(to_submit)
    next_submit = next_callbacks = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline:
        now = time.monotonic()
        if queue and now >= next_submit:
            pipe = queue.pop(0)
            if not engine.has_state(pipe.root_id):
                engine.run_pipeline(copy.deepcopy(pipe.tree))
                mc.journal(pipe.root_id, "-", "submitted", 0, "-")
            next_submit = now + args.stagger
            if not queue:
                print("SUBMITTED", flush=True)
        if now >= next_callbacks:
            sender.run_once()
            next_callbacks = now + CALLBACK_PASS
        if args.exit_when_done and not queue and all(engine.is_finished(p.root_id) for p in to_submit):
            break
        stop.wait(0.005)
    engine.close(timeout=30)
    print("CLOSED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
