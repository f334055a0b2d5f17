"""Repairs of what ``rattan.engine.diagnose`` finds: work handed back to the lease machinery, which
hands it to a live engine at its next sweep (see diagnose's docstring), each as one unit of work
with a ``repair`` event in the run's event log: the audit trail of an operator's repair."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from rattan.engine.diagnose import EVENT_REPAIR, Finding
from rattan.errors import InvalidOperationError
from rattan.model import states
from rattan.model.records import OwnerRecord
from rattan.model.states import TokenStatus
from rattan.runtime.interface import ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.step import Step


def apply_repair(core: EngineCore, finding: Finding) -> str:
    """Carry out ``finding.repair`` in one unit of work with a ``repair`` event; returns what was
    done. InvalidOperationError when the work moved on meanwhile (nothing is changed)."""
    fix = finding.repair
    if fix is None:
        raise InvalidOperationError(f"nothing to repair: {finding.text}")
    audit: dict[str, Any] = {
        "action": fix.action,
        "reason": finding.kind,
        "text": finding.text,
        "by": _operator(),
    }

    def body(step: Step) -> str:
        tx = step.tx
        root = tx.states([finding.root_id])
        if not root or root[0].name not in (states.RUNNING, states.SUSPENDED):
            raise InvalidOperationError(f"pipeline {finding.root_id} is not running")
        if fix.action == "release_owner":
            owner = fix.owner or ""
            tx.lease(OwnerRecord(owner, "", 0, None, 0.0), core.clock.now(), lambda o: False)
            done = f"released the lease of owner {owner}: a live engine takes its work at its next sweep"
            audit["owner"] = owner
        elif fix.action == "rearm_token":
            found = tx.tokens([fix.token_id or 0])
            token = found[0] if found else None
            if token is None or token.status != TokenStatus.READY or token.owner != fix.owner:
                raise InvalidOperationError(f"token {fix.token_id} moved on: nothing to repair")
            token.owner = None  # unowned: the next sweep of a live engine claims and sends it
            tx.put_token(token)
            done = (
                f"re-armed token {token.id} at {token.current}: a live engine advances it at its next sweep"
            )
            audit.update(token_id=token.id, owner=fix.owner)
        else:  # rearm_poll
            scheds = tx.waits(ScheduleQuery(id=fix.schedule_id))
            sched = scheds[0] if scheds else None
            if sched is None or sched.finished or sched.expired or sched.owner != fix.owner:
                raise InvalidOperationError(f"schedule {fix.schedule_id} moved on: nothing to repair")
            sched.owner = None
            tx.put_wait(sched)
            done = f"re-armed the poll of {sched.node_id}: a live engine polls it at its next sweep"
            audit.update(schedule_id=sched.id, owner=fix.owner)
        step.event(EVENT_REPAIR, root_pipeline_id=finding.root_id, node_id=finding.node_id, **audit)
        return done

    return core.unit(body)


def _operator() -> str:
    """Who repaired: user@host (pid), for the audit event."""
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "?"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


__all__ = ["apply_repair"]
