"""Why a run does not progress, and what can be repaired: the engine half of ``rattan doctor``
and ``rattan repair``.

``diagnose`` reads a run's states, tokens, schedules and callbacks and the store's owners, and
says what each live part of the run waits for (a finding per node or token). Some waits are
normal (a poll due later, a callback from outside), some need an operator (a paused node or
pipeline, a FAILED node), and some are work nobody will do by itself: a token or a schedule held
by an owner that is gone while no live engine can take it, a token whose owner id has no lease
row (no sweep ever claims it), a ready token whose live owner has not moved it for a long time
(its message was lost). The last kinds carry a ``Repair``.

A repair (``rattan.engine.repair``) hands work back to the lease machinery, which hands it to a
live engine:

* ``release_owner``: the owner's lease is given up, as a closing engine gives it up
  (``UnitOfWork.lease`` with ``expires`` 0). The next sweep of any live engine claims all of its
  work (tokens, polls, callbacks, timers, rollbacks) and sends it.
* ``rearm_token`` / ``rearm_poll``: one token or poll loses its owner (``owner`` None); the next
  sweep of a live engine claims it and sends it again. Advancing a token twice is harmless (every
  write is a compare-and-set), so this is safe even if the old owner still had the message.

Each repair is one unit of work that also appends a ``repair`` event to the run's event log
(``action``, ``reason`` and what it acted on): the audit trail of an operator's repair.

The owners come from the store's ``Reads.owners``: reading them takes no lock and claims nothing.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rattan.engine.sweep import process_alive
from rattan.errors import NotFoundError
from rattan.model import states
from rattan.model.records import RunSummary, ScheduleType, StateRecord, TokenRecord, to_datetime
from rattan.model.states import TokenStatus
from rattan.runtime.interface import CallbackQuery, RunQuery, ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.runtime.interface import Reads

STALE_SECONDS = 60.0  # a ready token of a live owner that has not moved this long is lost work
EVENT_REPAIR = "repair"
LIVE = "live"
GONE = "gone"


@dataclass(slots=True)
class Owner:
    """An engine process that holds work, as the doctor sees it."""

    id: str
    host: str
    pid: int
    expires: float
    status: str  # LIVE or GONE
    why: str  # "lease valid", "lease ran out", "gave its lease up", "process gone", "no lease row"

    @property
    def live(self) -> bool:
        return self.status == LIVE


@dataclass(slots=True)
class Repair:
    """What ``repair`` can do about a finding (see the module's docstring)."""

    action: str  # release_owner, rearm_token, rearm_poll
    owner: str | None = None
    token_id: int | None = None
    schedule_id: int | None = None


@dataclass(slots=True)
class Finding:
    """One reason a part of a run waits. ``stuck``: nothing will move it by itself (an operator,
    an outside system, a live engine or a repair is needed)."""

    root_id: str
    node_id: str | None
    kind: str
    stuck: bool
    text: str
    fix: str | None = None
    repair: Repair | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Diagnosis:
    root_id: str
    state: str
    findings: list[Finding]

    @property
    def stuck(self) -> bool:
        return any(f.stuck for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.root_id, "state": self.state, "stuck": self.stuck,
            "findings": [f.as_dict() for f in self.findings],
        }  # fmt: skip


def read_owners(core: EngineCore) -> dict[str, Owner]:
    """The store's owners, each LIVE or GONE."""
    seen = core.store.read(lambda r: r.owners())
    now = core.clock.now()
    host = socket.gethostname()
    found: dict[str, Owner] = {}
    for o in seen:
        if o.expires <= 0:
            status, why = GONE, "gave its lease up"
        elif o.expires < now:
            status, why = GONE, "lease ran out"
        elif o.host == host and not process_alive(o.pid, o.pid_started):
            status, why = GONE, "process gone"
        else:
            status, why = LIVE, "lease valid"
        found[o.id] = Owner(o.id, o.host, o.pid, o.expires, status, why)
    return found


def _when(ts: float | None) -> str:
    value = to_datetime(ts)
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


class _Run:
    """What one diagnosis reads of a run."""

    def __init__(self, tx: Reads, root_id: str) -> None:
        self.states = {s.node_id: s for s in tx.states(root_id=root_id)}
        self.tokens = [t for t in tx.tokens(root_id=root_id) if t.status != TokenStatus.DONE]
        self.last_event = 0.0
        after = 0
        while page := tx.events(after, root_id, 1000):
            after = page[-1].id
            self.last_event = page[-1].created
            if len(page) < 1000:
                break


def diagnose(
    core: EngineCore, root_id: str, owners: dict[str, Owner] | None = None, stale: float = STALE_SECONDS
) -> Diagnosis:
    """What run ``root_id`` waits for; NotFoundError when there is no such run."""
    owners = read_owners(core) if owners is None else owners
    found = core.store.read(lambda tx: tx.runs(RunQuery(root_ids=[root_id], limit=1)))
    if not found:
        raise NotFoundError(f"pipeline {root_id} does not exist")
    summary = found[0]
    if summary.name in (states.FINISHED, states.REVOKED):
        return Diagnosis(root_id, summary.name, [])
    names = {node_id: info.node.name for node_id, info in core.plans.plan(root_id).nodes.items()}
    now = core.clock.now()
    live_engine = any(o.live for o in owners.values())

    def label(node_id: str | None) -> str:
        if node_id is None:
            return "-"
        name = names.get(node_id)
        return f"{name} ({node_id})" if name else node_id

    def body(tx: Reads) -> list[Finding]:
        run = _Run(tx, root_id)
        out: list[Finding] = []
        for st in run.states.values():
            out += _node_findings(tx, st, root_id, label, now, owners, stale)
        for token in run.tokens:
            out += _token_findings(token, run, label, now, owners, stale)
        return out

    findings = core.store.read(body)
    if not live_engine and summary.busy:
        findings.append(
            Finding(
                root_id, None, "no_engine", True,
                "no engine holds a live lease on this store: the run's work (tokens to advance, "
                "polls, timers, callbacks) waits until one runs",
                "start an engine on this store: rattan worker, rattan serve, or the application",
            )
        )  # fmt: skip
    return Diagnosis(root_id, summary.name, findings)


def _node_findings(
    tx: Reads, st: StateRecord, root_id: str, label: Any, now: float, owners: dict[str, Owner], stale: float
) -> list[Finding]:
    node = st.node_id
    if st.name == states.SUSPENDED:
        if node == root_id or st.node_id in _pipelines(tx, root_id):
            what, fix = "pipeline", f"rattan resume {node}"
            return [Finding(root_id, node, "paused_pipeline", True, f"{what} {label(node)} is paused", fix)]
        text = f"node {label(node)} is paused: a token that reaches it stops there"
        return [Finding(root_id, node, "paused_node", True, text, "resume_node_appoint (api)")]
    if st.name == states.FAILED:
        outputs = tx.node_data(node).outputs or {}
        error = str(outputs.get("ex_data") or "").strip().splitlines()
        text = f"node {label(node)} FAILED and waits for an operator" + (f": {error[-1]}" if error else "")
        return [Finding(root_id, node, "failed", True, text, f"rattan retry {node} | rattan skip {node}")]
    if st.name != states.RUNNING or node == root_id:
        return []
    out: list[Finding] = []
    for sched in tx.waits(ScheduleQuery(node_id=node, version=st.version, pending=True)):
        holder = owners.get(sched.owner or "")
        held = f" (held by {sched.owner}, {holder.why if holder else 'no lease row'})" if sched.owner else ""
        if sched.type == ScheduleType.POLL and sched.due is not None:
            late = now - sched.due
            when = f"in {-late:.0f}s" if late < 0 else f"overdue by {late:.0f}s"
            text = f"node {label(node)} waits for a poll due {_when(sched.due)} ({when}){held}"
            detail = {"due": sched.due, "polls": sched.times, "schedule_id": sched.id, "owner": sched.owner}
            lost = late > stale and holder is not None and holder.live  # a live owner lost its message
            hint = "re-arm the poll (rattan repair)" if lost else None
            repair = Repair("rearm_poll", sched.owner, schedule_id=sched.id) if lost else None
            out.append(Finding(root_id, node, "poll", lost, text, hint, repair, detail))
        elif sched.type != ScheduleType.POLL:
            stored = tx.waits(CallbackQuery(node_id=node, version=st.version, pending=True))
            extra = f"; {len(stored)} stored callback(s) not applied yet" if stored else ""
            text = f"node {label(node)} waits for a callback for version {st.version}{extra}{held}"
            fix = f"rattan callback {node} --data JSON --version {st.version}"
            detail = {"version": st.version, "pending_callbacks": len(stored), "owner": sched.owner}
            out.append(Finding(root_id, node, "callback", True, text, fix, None, detail))
    return out


def runs_page(tx: Reads, query: RunQuery) -> list[RunSummary]:
    return tx.runs(query)


def _pipelines(tx: Reads, root_id: str) -> set[str]:
    run = tx.run(root_id)
    found: set[str] = set()

    def walk(pipeline: dict[str, Any]) -> None:
        for node_id, node in pipeline.get("activities", {}).items():
            if node.get("type") == "SubProcess":
                found.add(node_id)
                walk(node["pipeline"])

    if run is not None:
        walk(run.tree)
    return found


def _token_findings(
    token: TokenRecord, run: _Run, label: Any, now: float, owners: dict[str, Owner], stale: float
) -> list[Finding]:
    root_id, node = token.root_id, token.current
    owner = token.owner
    holder = owners.get(owner or "")
    detail = {"token_id": token.id, "status": token.status, "owner": owner, "executing": token.executing}
    live_statuses = (TokenStatus.READY, TokenStatus.SLEEP)
    if owner and holder is None and token.status in live_statuses:
        text = f"token {token.id} at {label(node)} is held by {owner}, which has no lease row: "
        text += "no sweep claims it"
        fix = "hand the owner's work to a live engine (rattan repair)"
        return [Finding(root_id, node, "orphan", True, text, fix, Repair("release_owner", owner), detail)]
    if holder is not None and not holder.live and token.status in live_statuses:
        text = (
            f"token {token.id} at {label(node)} is held by {owner} on {holder.host} (pid {holder.pid}), "
            f"which is gone ({holder.why}, lease until {_when(holder.expires)})"
        )
        # a lease that ran out or was given up is claimed by the next sweep of a live engine; a
        # process gone while its lease runs is seen at once only by an engine on its machine
        claimable = holder.why in ("lease ran out", "gave its lease up")
        repair = None if claimable else Repair("release_owner", owner)
        fix = "a live engine takes it at its next sweep" if claimable else "rattan repair"
        return [Finding(root_id, node, "dead_owner", True, text, fix, repair, detail)]
    if token.status != TokenStatus.READY:
        return []
    if token.executing:
        who = f" on {owner}" if owner else ""
        text = f"execute() of {label(node)} is running{who} (version {token.executing})"
        return [Finding(root_id, node, "executing", False, text, None, None, detail)]
    if owner == "":  # a ready token no sweep looks at (only parked tokens should have no owner)
        text = f"token {token.id} at {label(node)} is ready but marked as no work: nobody will advance it"
        repair = Repair("rearm_token", owner, token.id)
        return [Finding(root_id, node, "orphan", True, text, "rattan repair", repair, detail)]
    if owner is None:
        text = (
            f"token {token.id} at {label(node)} is ready with no owner: a live engine's next sweep takes it"
        )
        return [Finding(root_id, node, "unowned", False, text, None, None, detail)]
    quiet = now - run.last_event if run.last_event else 0.0
    if holder is not None and holder.live and quiet > stale:
        text = (
            f"token {token.id} at {label(node)} is ready on live engine {owner} but the run has not "
            f"moved for {quiet:.0f}s: its message was probably lost"
        )
        repair = Repair("rearm_token", owner, token.id)
        return [Finding(root_id, node, "stale", True, text, "rattan repair", repair, detail)]
    return []


def stuck_runs(core: EngineCore, stale: float = STALE_SECONDS) -> list[Diagnosis]:
    """The diagnoses of every RUNNING or SUSPENDED run that looks stuck."""
    owners = read_owners(core)
    out: list[Diagnosis] = []
    for state in (states.RUNNING, states.SUSPENDED):
        offset = 0
        while True:
            query = RunQuery(state=state, limit=1000, offset=offset)
            page = core.store.read(functools.partial(runs_page, query=query))
            offset += len(page)
            for run in page:
                found = diagnose(core, run.root_id, owners, stale)
                if found.stuck:
                    out.append(found)
            if len(page) < 1000:
                break
    return out


__all__ = ["Diagnosis", "Finding", "Owner", "Repair", "diagnose", "read_owners", "runs_page", "stuck_runs"]
