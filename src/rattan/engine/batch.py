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
from rattan.spec.model import NodeType, SubProcessNode

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import RunPlan
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


AHEAD = 64  # nodes a round reads ahead of one token at most


def ahead(plan: RunPlan, node_id: str) -> list[str]:
    """The nodes a token at ``node_id`` may reach in this step: the node itself, then the nodes
    after it through engine-side nodes (gateways, events, subprocess entries and exits), up to
    and including the service activities where it stops."""
    out = [node_id]
    seen = {node_id}
    todo = [node_id]
    root = plan.root.id
    while todo and len(out) < AHEAD:
        info = plan.nodes.get(todo.pop())
        if info is None:
            continue
        pipeline, node = info.pipeline, info.node
        after = [pipeline.flows[f].target for f in node.outgoing]
        if isinstance(node, SubProcessNode):
            after.append(node.pipeline.start_event_id)
            # entering it reads the states of all its nodes (their inner loops start afresh)
            out.extend(n for n in node.pipeline.nodes if n not in seen and n != node.pipeline.start_event_id)
            seen.update(node.pipeline.nodes)
            seen.discard(node.pipeline.start_event_id)
        elif not node.outgoing and pipeline.id != root:
            after.append(pipeline.id)  # a subprocess's end: back to its node, and what follows it
        for nxt in after:
            if nxt not in seen:
                seen.add(nxt)
                out.append(nxt)
                found = plan.nodes.get(nxt)
                if found is not None and found.kind is not NodeType.ServiceActivity:
                    todo.append(nxt)
    return out


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
        store may offer, PostgreSQL's does: see ``runtime/postgres/keyed.py``): each token, its run
        (a store that locks runs takes them first), the states of its run's root, its enclosing
        subprocesses, its node and the nodes it may reach (``ahead``), their pipelines' contexts
        and the schedule whose step it carries. One round trip instead of several per token."""
        plans = self.core.plans
        roots: list[str] = []
        nodes: list[str] = []
        contexts: list[str] = []
        for proc in tx.tokens([w.token_id for w in work]):
            try:
                plan = plans.plan(proc.root_id)
            except RattanError:  # a run deleted meanwhile: its step finds out
                continue
            roots.append(proc.root_id)
            nodes.append(proc.root_id)
            nodes.extend(proc.stack)
            nodes.append(proc.current)
            for node_id in ahead(plan, proc.current):
                nodes.append(node_id)
                info = plan.nodes.get(node_id)
                if info is not None:
                    contexts.append(info.pipeline_id)
        schedules = [w.schedule_id for w in work if w.schedule_id is not None]
        prefetch(roots=roots, states=nodes, contexts=contexts, schedules=schedules)

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
