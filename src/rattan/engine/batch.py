"""Advancing a batch of tokens in ONE store transaction (one commit for the whole batch).

The batch is first run optimistically, with no savepoint per token. If any token raises, the
transaction is rolled back and the batch redone with a savepoint per token, so a token's failure
is undone alone and its neighbours commit. What the failure was decides what happens to it:

* a conflict (another writer changed what it read) or an unavailable store: the token, with the
  result of its user step, is kept and tried again in a later round, reading afresh;
* anything else is an engine error: the user step's result is still recorded, and the node the
  token stopped at is failed with ``engine error: ...``, in the same transaction (never a token
  stranded, and nothing lost if that transaction's commit fails: the batch is tried again).

Effects apply after the commit. When another caller waits to write (an API call, a
``run_pipeline``), the batch stops early so that caller is not kept waiting for the whole batch:
the tokens it did not reach are returned, for the next round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rattan.engine.activity import ExecResult
from rattan.engine.advance import Outcome, advance, fail_engine_error
from rattan.engine.schedule import ScheduleResult
from rattan.engine.step import Effects, LogSink, Step, write_log
from rattan.errors import BackendUnavailableError, ConflictError, RattanError

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.runtime.interface import UnitOfWork

log = logging.getLogger("rattan.engine")

CONFLICTS_BEFORE_ERROR = 5  # a token that keeps conflicting is an engine error after this many tries


@dataclass(slots=True)
class Work:
    """A token to advance, with the result of its last user step (if any)."""

    token_id: int
    carry: ExecResult | ScheduleResult | None = None
    schedule_id: int | None = None  # the schedule whose step this carries (busy until recorded)
    conflicts: int = 0


# per token: (work, outcome, effects, error)
Results = list[tuple[Work, Outcome | None, Effects | None, Exception | None]]


class Batch:
    def __init__(self, core: EngineCore) -> None:
        self.core = core
        waiting = getattr(core.store, "waiting", None)
        self._waiting = waiting if callable(waiting) else (lambda: False)

    def advance(self, work: list[Work]) -> tuple[list[tuple[Work, Outcome | None]], list[Work]]:
        """Advance ``work`` in one transaction; returns (outcomes, tokens to try again)."""
        leftover: list[Work] = []
        core = self.core

        def optimistic(tx: UnitOfWork) -> Results:
            out: Results = []
            sink: LogSink = []
            prefetch = getattr(tx, "prefetch", None)
            if prefetch is not None:
                self._prefetch(tx, prefetch, work)
            for index, item in enumerate(work):
                if index and self._waiting():
                    leftover.extend(work[index:])
                    break
                step = Step(core, tx, sink)
                out.append((item, advance(step, item.token_id, item.carry), step.fx, None))
            if sink:
                write_log(Step(core, tx), sink)  # the whole batch's events: one call per run
            return out

        try:
            results = core.store.unit(optimistic)
        except BackendUnavailableError:
            raise  # nothing was written: the caller keeps the batch and tries again
        except Exception:
            leftover.clear()
            results = core.store.unit(lambda tx: self._careful(tx, work, leftover))
        done: list[tuple[Work, Outcome | None]] = []
        for item, outcome, fx, _ in results:
            if fx is not None:
                core.apply(fx)
            done.append((item, outcome))
        return done, leftover

    def _prefetch(self, tx: UnitOfWork, prefetch: Any, work: list[Work]) -> None:
        """Tell a store that reads row by row what this round will read (``prefetch`` is a hint a
        store may offer, PostgreSQL's does: see ``runtime/postgres/keyed.py``): each token, the
        states of its run's root, its enclosing subprocesses, its node and the nodes after it,
        its pipeline's context and the schedule whose step it carries. One round trip instead of
        several per token."""
        plans = self.core.plans
        nodes: list[str] = []
        contexts: list[str] = []
        for proc in tx.tokens([w.token_id for w in work]):
            try:
                plan = plans.plan(proc.root_id)
            except RattanError:  # a run deleted meanwhile: its step finds out
                continue
            nodes.append(proc.root_id)
            nodes.extend(proc.stack)
            nodes.append(proc.current)
            info = plan.nodes.get(proc.current)
            if info is not None:
                contexts.append(info.pipeline_id)
                pipeline = info.pipeline
                nodes.extend(pipeline.flows[f].target for f in pipeline.nodes[proc.current].outgoing)
        schedules = [w.schedule_id for w in work if w.schedule_id is not None]
        prefetch(states=nodes, contexts=contexts, schedules=schedules)

    def _careful(self, tx: UnitOfWork, work: list[Work], leftover: list[Work]) -> Results:
        core = self.core
        out: Results = []
        sink: LogSink = []
        for item in work:
            mine: LogSink = []
            step = Step(core, tx, mine)
            try:
                with tx.savepoint():
                    outcome = advance(step, item.token_id, item.carry)
            except (ConflictError, BackendUnavailableError) as exc:
                # another writer won, or the store failed for this token: read afresh later
                item.conflicts += isinstance(exc, ConflictError)
                if item.conflicts < CONFLICTS_BEFORE_ERROR:
                    log.info("token %s kept for the next round: %s", item.token_id, exc)
                    leftover.append(item)
                    continue
                out.append(self._record_only(tx, item, exc, sink))
                continue
            except Exception as exc:
                out.append(self._record_only(tx, item, exc, sink))
                continue
            sink.extend(mine)
            out.append((item, outcome, step.fx, None))
        if sink:
            write_log(Step(core, tx), sink)
        return out

    def _record_only(
        self, tx: UnitOfWork, item: Work, exc: Exception, sink: LogSink
    ) -> tuple[Work, Outcome | None, Effects | None, Exception | None]:
        """The token raised: keep its user step's result (if any), then fail the node it stands
        at, in this same transaction."""
        log.error("engine error while advancing token %s", item.token_id, exc_info=exc)
        mine: LogSink = []
        step = Step(self.core, tx, mine)  # the failed step's effects were rolled back with it
        if item.carry is not None:
            try:
                with tx.savepoint():
                    advance(step, item.token_id, item.carry, record_only=True)
            except Exception:
                mine = []
                step = Step(self.core, tx, mine)
        message = f"engine error: {type(exc).__name__}: {exc}"
        try:
            with tx.savepoint():
                fail_engine_error(step, item.token_id, message)
                step.flush()
        except Exception:
            log.exception("could not record the engine error of token %s", item.token_id)
        sink.extend(mine)
        return item, None, step.fx, exc
