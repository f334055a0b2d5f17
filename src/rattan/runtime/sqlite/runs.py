"""Summaries of runs: what ``Reads.runs`` answers (listing runs, waiting on one, retention).

One query selects the page of runs; three more, each over the page's ids, count its nodes by
state, name the failed ones and tell which runs the engine still has work for. Every one goes
through an index on the run id (``states_root``, ``processes_root``) or the node id.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from rattan.errors import BadInputError
from rattan.model.records import TIMERS_ON_FAILED, TIMERS_ON_RUNNING, RunSummary
from rattan.model.states import FAILED, FINISHED, REVOKED, RUNNING, TokenStatus
from rattan.runtime.interface import RUNS_PER_QUERY, RunQuery

# the timers that act on a node in each state (a timer armed for a state the node has left is
# stale: it does nothing when it fires)
_ON_RUNNING = repr(TIMERS_ON_RUNNING)
_ON_FAILED = repr(TIMERS_ON_FAILED)

# a run the engine can still move by itself: a token to advance (or whose execute runs), a poll
# or a timer armed, a callback stored but not applied yet
_BUSY = f"""
    SELECT root_id FROM processes WHERE root_id IN ({{ids}}) AND status='{TokenStatus.READY}'
    UNION SELECT st.root_id FROM states st JOIN schedules sc ON sc.node_id = st.node_id
        WHERE st.root_id IN ({{ids}}) AND sc.finished=0 AND sc.expired=0 AND sc.due IS NOT NULL
    UNION SELECT st.root_id FROM states st JOIN timers t ON t.node_id = st.node_id
        AND t.version = st.version
        WHERE st.root_id IN ({{ids}}) AND (st.name='{RUNNING}' AND t.kind IN {_ON_RUNNING}
            OR st.name='{FAILED}' AND t.kind IN {_ON_FAILED})
    UNION SELECT st.root_id FROM states st JOIN callbacks cb ON cb.node_id = st.node_id
        WHERE st.root_id IN ({{ids}}) AND cb.applied=0"""


def check_query(q: RunQuery) -> None:
    if not 1 <= q.limit <= RUNS_PER_QUERY:
        raise BadInputError(f"limit must be between 1 and {RUNS_PER_QUERY}, got {q.limit}")
    if q.offset < 0:
        raise BadInputError(f"offset must be 0 or more, got {q.offset}")


def run_summaries(c: sqlite3.Connection, q: RunQuery) -> list[RunSummary]:
    check_query(q)
    where: list[str] = []
    args: list[Any] = []
    if q.state is not None:
        where.append("s.name=?")
        args.append(q.state)
    if q.created_after is not None:
        where.append("r.created > ?")
        args.append(q.created_after)
    if q.created_before is not None:
        where.append("r.created < ?")
        args.append(q.created_before)
    if q.root_ids:
        ids = list(q.root_ids)[:RUNS_PER_QUERY]
        where.append(f"r.root_id IN ({','.join('?' * len(ids))})")
        args += ids
    if q.has_failed_nodes is not None:
        exists = (
            "EXISTS (SELECT 1 FROM states f WHERE f.root_id=r.root_id AND f.name=? "
            "AND f.node_id != r.root_id)"
        )
        where.append(exists if q.has_failed_nodes else f"NOT {exists}")
        args.append(FAILED)
    order = "r.created DESC, r.rowid DESC"
    if q.finished_before is not None:
        where.append("s.name IN (?, ?) AND s.archived IS NOT NULL AND s.archived < ?")
        args += [FINISHED, REVOKED, q.finished_before]
        order = "s.archived"
    sql = (
        "SELECT r.root_id, s.name, r.created, s.started, s.archived FROM runs r "
        "JOIN states s ON s.node_id = r.root_id"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {order} LIMIT ? OFFSET ?"
    )
    page = [RunSummary(*row) for row in c.execute(sql, [*args, q.limit, q.offset])]
    if page:
        _fill(c, page)
    return page


def _fill(c: sqlite3.Connection, page: list[RunSummary]) -> None:
    by_id = {run.root_id: run for run in page}
    ids = list(by_id)
    marks = ",".join("?" * len(ids))
    for root_id, name, n in c.execute(
        f"SELECT root_id, name, count(*) FROM states WHERE root_id IN ({marks}) AND node_id != root_id "
        "GROUP BY root_id, name",
        ids,
    ):
        by_id[root_id].counts[name] = n
    for root_id, node_id in c.execute(
        f"SELECT root_id, node_id FROM states WHERE root_id IN ({marks}) AND name=? AND node_id != root_id "
        "ORDER BY created, rowid",
        [*ids, FAILED],
    ):
        by_id[root_id].failed.append(node_id)
    for (root_id,) in c.execute(_BUSY.format(ids=marks), ids * 4):
        by_id[root_id].busy = True
