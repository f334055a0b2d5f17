"""Owners and their leases: which engine process holds which pending work, and the claiming of
the work of processes that are gone (the ``lease`` half of ``PostgresUnit``).

Several machines lease at once, each in its own READ COMMITTED transaction. Every claim is one
statement that locks the rows it takes with ``FOR UPDATE SKIP LOCKED``: a row another claimer (or
a writer) holds is passed over, not waited for, so two claimers never take the same row and never
wait for each other (no deadlock between leases), and a row passed over is taken by a later lease
if it is still unclaimed then. A dead owner's registration is dropped only once no live work of it
is left, so work skipped because it was locked is found again by the next lease.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from rattan.model.messages import Advance, Callback, FireTimer, Message, Poll, Recover, Task
from rattan.model.records import DueWork, OwnerRecord, ScheduleType
from rattan.model.states import TokenStatus
from rattan.runtime.postgres.rows import Connected

ROLLBACK_TASK = "rollback.walk"  # the task a claimed rollback becomes (rattan.rollback runs it)

# (table, what is live work there); each claim moves rows of "whose" owners that are live work
_UNOWNED = "owner IS NULL"
_DEAD = "owner = ANY(%s)"
_CLAIM_TOKENS = (
    "UPDATE processes SET owner=%s, rev=rev+1 WHERE id IN (SELECT id FROM processes WHERE {whose} "
    "AND {live} FOR UPDATE SKIP LOCKED) RETURNING id, status, executing"
)
_CLAIM_SCHEDULES = (
    "UPDATE schedules SET owner=%s WHERE id IN (SELECT id FROM schedules WHERE {whose} "
    "AND NOT finished AND NOT expired FOR UPDATE SKIP LOCKED) RETURNING id, due"
)
_CLAIM_TIMERS = (
    "UPDATE timers SET owner=%s WHERE id IN (SELECT id FROM timers WHERE {whose} "
    "FOR UPDATE SKIP LOCKED) RETURNING id, due"
)
_CLAIM_ROLLBACKS = (
    "UPDATE rollback_jobs SET owner=%s WHERE root_id IN (SELECT root_id FROM rollback_jobs "
    "WHERE {whose} AND status='running' FOR UPDATE SKIP LOCKED) RETURNING root_id"
)
# rows without owner that are no work leave the partial indexes of unowned rows
_PARK_TOKENS = (
    "UPDATE processes SET owner='' WHERE id IN (SELECT id FROM processes WHERE owner IS NULL "
    "AND status != 'ready' FOR UPDATE SKIP LOCKED)"
)
_PARK_SCHEDULES = (
    "UPDATE schedules SET owner='' WHERE id IN (SELECT id FROM schedules WHERE owner IS NULL "
    "AND (finished OR expired) FOR UPDATE SKIP LOCKED)"
)
# live work still named by dead owners (rows a claim passed over because they were locked)
_LEFT = (
    "SELECT EXISTS (SELECT 1 FROM processes WHERE owner = ANY(%s) AND status != 'done') "
    "OR EXISTS (SELECT 1 FROM schedules WHERE owner = ANY(%s) AND NOT finished AND NOT expired) "
    "OR EXISTS (SELECT 1 FROM timers WHERE owner = ANY(%s))"
)
_CALLBACKS_OF = (
    "SELECT c.id FROM callbacks c JOIN schedules s ON s.node_id = c.node_id AND s.version = c.version "
    "WHERE c.applied = 0 AND s.owner = %s AND NOT s.finished AND NOT s.expired "
    f"AND s.type != {int(ScheduleType.POLL)} ORDER BY c.id"
)


# pending work, whoever owns it (operators: metrics, doctor); one statement, read-only
_DUE_WORK = (
    "SELECT (SELECT count(*) FROM processes WHERE status = 'ready' AND executing IS NULL), "
    "(SELECT count(*) FROM processes WHERE status = 'ready' AND executing IS NOT NULL), "
    "(SELECT count(*) FROM schedules WHERE NOT finished AND NOT expired AND due <= %(now)s), "
    "(SELECT count(*) FROM timers WHERE due <= %(now)s), "
    "(SELECT count(*) FROM callbacks WHERE applied = 0)"
)


class LeaseQueries(Connected):
    __slots__ = ()

    def owners(self) -> list[OwnerRecord]:
        rows = self.c.execute("SELECT id, host, pid, pid_started, expires FROM owners ORDER BY id")
        return [OwnerRecord(*r) for r in rows]

    def due_work(self, now: float) -> DueWork:
        row = self.c.execute(_DUE_WORK, {"now": now}).fetchone()
        assert row is not None
        return DueWork(*(int(v or 0) for v in row))

    def lease(
        self, owner: OwnerRecord, now: float, is_dead: Callable[[OwnerRecord], bool],
        tasks: Collection[str] = (),
    ) -> list[tuple[float, Message]]:  # fmt: skip
        c = self.c
        c.execute(
            "INSERT INTO owners(id, host, pid, pid_started, expires) VALUES (%s,%s,%s,%s,%s) "
            "ON CONFLICT (id) DO UPDATE SET expires=excluded.expires",
            (owner.id, owner.host, owner.pid, owner.pid_started, owner.expires),
        )
        if owner.expires <= 0:  # given up: its work is for the others now
            return []
        others = [
            OwnerRecord(*row)
            for row in c.execute(
                "SELECT id, host, pid, pid_started, expires FROM owners WHERE id != %s", (owner.id,)
            )
        ]
        dead = [o.id for o in others if o.expires < now or is_dead(o)]
        me = owner.id
        work: list[tuple[float, Message]] = []
        rollback = ROLLBACK_TASK in tasks
        c.execute(_PARK_TOKENS)
        c.execute(_PARK_SCHEDULES)
        self._claim(me, now, _UNOWNED, (), "status = 'ready'", rollback, work)
        if dead:
            # every live token of a dead owner becomes this owner's (a parked one may wake later)
            self._claim(me, now, _DEAD, (dead,), "status != 'done'", rollback, work)
            left = c.execute(_LEFT, (dead, dead, dead)).fetchone()
            if left is not None and not left[0]:
                c.execute(
                    "DELETE FROM owners WHERE id IN (SELECT id FROM owners WHERE id = ANY(%s) "
                    "FOR UPDATE SKIP LOCKED)",
                    (dead,),
                )
        # callbacks another process stored for schedules this owner holds
        work += [(now, Callback(r[0])) for r in c.execute(_CALLBACKS_OF, (me,))]
        return work

    def _claim(
        self, me: str, now: float, whose: str, args: tuple[Any, ...], live: str, rollback: bool,
        work: list[tuple[float, Message]],
    ) -> None:  # fmt: skip
        """Move the rows ``whose`` selects to ``me``; append what is work now."""
        c = self.c
        tokens = c.execute(_CLAIM_TOKENS.format(whose=whose, live=live), (me, *args)).fetchall()
        for token_id, status, executing in sorted(tokens):
            if status == TokenStatus.READY:
                work.append((now, Recover(token_id, me) if executing else Advance(token_id)))
        for sid, due in sorted(c.execute(_CLAIM_SCHEDULES.format(whose=whose), (me, *args)).fetchall()):
            if due is not None:
                work.append((due, Poll(sid)))
        for tid, due in sorted(c.execute(_CLAIM_TIMERS.format(whose=whose), (me, *args)).fetchall()):
            work.append((due, FireTimer(tid)))
        if rollback:
            for (root_id,) in c.execute(_CLAIM_ROLLBACKS.format(whose=whose), (me, *args)).fetchall():
                work.append((now, Task(ROLLBACK_TASK, {"root_id": root_id})))
