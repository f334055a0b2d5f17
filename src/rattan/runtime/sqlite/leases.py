"""Owners and their leases: which engine process holds which pending work, and the claiming of
the work of processes that are gone (the ``lease`` half of ``SQLiteUnit``).

SQLite runs one write transaction at a time, across processes too, so a claim is an UPDATE of
the ``owner`` column: the first claimer moves the rows to itself, a second one finds none left.
Rows with no owner are found through partial indexes that hold only them (usually none), so a
lease renewal costs a few index probes; the rows of a dead owner are found by a scan, once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection

from rattan.model.messages import Advance, Callback, FireTimer, Message, Poll, Recover, Task
from rattan.model.records import DueWork, OwnerRecord, ScheduleType
from rattan.model.states import TokenStatus
from rattan.runtime.sqlite.rows import WriterCache

# pending work, whoever owns it (operators: metrics, doctor); one statement, read-only
_DUE_WORK = (
    "SELECT (SELECT count(*) FROM processes WHERE status = 'ready' AND executing IS NULL), "
    "(SELECT count(*) FROM processes WHERE status = 'ready' AND executing IS NOT NULL), "
    "(SELECT count(*) FROM schedules WHERE NOT finished AND NOT expired AND due <= :now), "
    "(SELECT count(*) FROM timers WHERE due <= :now), "
    "(SELECT count(*) FROM callbacks WHERE applied = 0)"
)
ROLLBACK_TASK = "rollback.walk"  # the task a claimed rollback becomes (rattan.rollback runs it)


class LeaseQueries:
    __slots__ = ()
    c: sqlite3.Connection
    cache: WriterCache | None

    def owners(self) -> list[OwnerRecord]:
        rows = self.c.execute("SELECT id, host, pid, pid_started, expires FROM owners ORDER BY id")
        return [OwnerRecord(*r) for r in rows]

    def due_work(self, now: float) -> DueWork:
        row = self.c.execute(_DUE_WORK, {"now": now}).fetchone()
        return DueWork(*(int(v or 0) for v in row))

    def lease(
        self, owner: OwnerRecord, now: float, is_dead: Callable[[OwnerRecord], bool],
        tasks: Collection[str] = (),
    ) -> list[tuple[float, Message]]:  # fmt: skip
        c = self.c
        c.execute(
            "INSERT INTO owners(id, host, pid, pid_started, expires) VALUES (?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET expires=excluded.expires",
            (owner.id, owner.host, owner.pid, owner.pid_started, owner.expires),
        )
        if owner.expires <= 0:  # given up: its work is for the others now
            return []
        others = [
            OwnerRecord(*row)
            for row in c.execute(
                "SELECT id, host, pid, pid_started, expires FROM owners WHERE id != ?", (owner.id,)
            )
        ]
        dead = [o.id for o in others if o.expires < now or is_dead(o)]
        me = owner.id
        work: list[tuple[float, Message]] = []
        claimed = 0
        for where, args in self._whose(dead):
            claimed += self._claim(me, now, where, args, ROLLBACK_TASK in tasks, work)
        if dead:
            c.execute(f"DELETE FROM owners WHERE id IN ({','.join('?' * len(dead))})", dead)
        if claimed and self.cache is not None:
            # rows changed owner in bulk (parked tokens and callback waits too, which are no
            # work yet): the cache would write the old owner back
            self.cache.clear()
        # callbacks another process stored for schedules this owner holds
        rows = c.execute(
            "SELECT c.id FROM callbacks c "
            "JOIN schedules s ON s.node_id = c.node_id AND s.version = c.version "
            "WHERE c.applied = 0 AND s.owner = ? AND s.finished = 0 AND s.expired = 0 "
            f"AND s.type != {int(ScheduleType.POLL)} ORDER BY c.id",
            (me,),
        )
        work += [(now, Callback(r[0])) for r in rows]
        return work

    @staticmethod
    def _whose(dead: list[str]) -> list[tuple[str, tuple[str, ...]]]:
        """The owner conditions to claim under: no owner (an indexed probe), then the dead."""
        out: list[tuple[str, tuple[str, ...]]] = [("owner IS NULL", ())]
        if dead:
            out.append((f"owner IN ({','.join('?' * len(dead))})", tuple(dead)))
        return out

    def _claim(
        self, me: str, now: float, where: str, args: tuple[str, ...], rollback: bool,
        work: list[tuple[float, Message]],
    ) -> int:  # fmt: skip
        """Move the rows ``where`` selects to ``me``; append what is work now; return the number
        of rows moved."""
        c = self.c
        claimed = 0
        # every live token of a dead owner becomes this owner's (a parked one may wake later);
        # only ready ones are work now. Without an owner, only ready tokens are looked for
        # (what the partial index holds): a parked one gets an owner when it is next advanced.
        live = "status = 'ready'" if where == "owner IS NULL" else "status != 'done'"
        if where == "owner IS NULL":  # tokens without owner that are no work leave the index
            c.execute("UPDATE processes SET owner='' WHERE owner IS NULL AND status != 'ready'")
        for token_id, status, executing in c.execute(
            f"UPDATE processes SET owner=?, rev=rev+1 WHERE {where} AND {live} "
            "RETURNING id, status, executing",
            (me, *args),
        ).fetchall():
            claimed += 1
            if status == TokenStatus.READY:
                work.append((now, Recover(token_id, me) if executing else Advance(token_id)))
        if where == "owner IS NULL":
            c.execute("UPDATE schedules SET owner='' WHERE owner IS NULL AND (finished=1 OR expired=1)")
        for sid, due in c.execute(
            f"UPDATE schedules SET owner=? WHERE {where} AND finished=0 AND expired=0 RETURNING id, due",
            (me, *args),
        ).fetchall():
            claimed += 1
            if due is not None:
                work.append((due, Poll(sid)))
        for tid, due in c.execute(
            f"UPDATE timers SET owner=? WHERE {where} RETURNING id, due",
            (me, *args),
        ).fetchall():
            claimed += 1
            work.append((due, FireTimer(tid)))
        if rollback:
            for (root_id,) in c.execute(
                f"UPDATE rollback_jobs SET owner=? WHERE {where} AND status='running' RETURNING root_id",
                (me, *args),
            ).fetchall():
                claimed += 1
                work.append((now, Task(ROLLBACK_TASK, {"root_id": root_id})))
        return claimed
