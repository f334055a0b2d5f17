"""Summaries of runs: what ``Reads.runs`` answers (listing runs, waiting on one, retention).

One query selects the page of runs; three more, each over the page's ids (one array parameter),
count its nodes by state, name the failed ones and tell which runs the engine still has work
for. Every one goes through an index on the run id (``states_root``, ``processes_root``) or the
node id.
"""

from __future__ import annotations

from typing import Any

import psycopg

from rattan.errors import BadInputError
from rattan.model.records import TIMERS_ON_FAILED, TIMERS_ON_RUNNING, RunSummary
from rattan.model.states import FAILED, FINISHED, REVOKED, RUNNING, TokenStatus
from rattan.runtime.interface import RUNS_PER_QUERY, RunQuery

# a run the engine can still move by itself: a token to advance (or whose execute runs), a poll
# or a timer armed, a callback stored but not applied yet
_BUSY = f"""
    SELECT root_id FROM processes WHERE root_id = ANY(%(ids)s) AND status='{TokenStatus.READY}'
    UNION SELECT st.root_id FROM states st JOIN schedules sc ON sc.node_id = st.node_id
        WHERE st.root_id = ANY(%(ids)s) AND NOT sc.finished AND NOT sc.expired AND sc.due IS NOT NULL
    UNION SELECT st.root_id FROM states st JOIN timers t ON t.node_id = st.node_id
        AND t.version = st.version
        WHERE st.root_id = ANY(%(ids)s) AND (st.name='{RUNNING}' AND t.kind = ANY(%(on_running)s)
            OR st.name='{FAILED}' AND t.kind = ANY(%(on_failed)s))
    UNION SELECT st.root_id FROM states st JOIN callbacks cb ON cb.node_id = st.node_id
        WHERE st.root_id = ANY(%(ids)s) AND cb.applied=0"""


def check_query(q: RunQuery) -> None:
    if not 1 <= q.limit <= RUNS_PER_QUERY:
        raise BadInputError(f"limit must be between 1 and {RUNS_PER_QUERY}, got {q.limit}")
    if q.offset < 0:
        raise BadInputError(f"offset must be 0 or more, got {q.offset}")


def run_summaries(c: psycopg.Connection[Any], q: RunQuery) -> list[RunSummary]:
    check_query(q)
    where: list[str] = []
    args: list[Any] = []
    if q.state is not None:
        where.append("s.name=%s")
        args.append(q.state)
    if q.created_after is not None:
        where.append("r.created > %s")
        args.append(q.created_after)
    if q.created_before is not None:
        where.append("r.created < %s")
        args.append(q.created_before)
    if q.root_ids:
        where.append("r.root_id = ANY(%s)")
        args.append(list(q.root_ids)[:RUNS_PER_QUERY])
    if q.has_failed_nodes is not None:
        exists = (
            "EXISTS (SELECT 1 FROM states f WHERE f.root_id=r.root_id AND f.name=%s "
            "AND f.node_id != r.root_id)"
        )
        where.append(exists if q.has_failed_nodes else f"NOT {exists}")
        args.append(FAILED)
    # seq: the order runs were stored in, for runs created at the same moment
    order = "r.created DESC, r.seq DESC"
    if q.finished_before is not None:
        where.append("s.name IN (%s, %s) AND s.archived IS NOT NULL AND s.archived < %s")
        args += [FINISHED, REVOKED, q.finished_before]
        order = "s.archived, r.seq"
    sql = (
        "SELECT r.root_id, s.name, r.created, s.started, s.archived FROM runs r "
        "JOIN states s ON s.node_id = r.root_id"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {order} LIMIT %s OFFSET %s"
    )
    page = [RunSummary(*row) for row in c.execute(sql, [*args, q.limit, q.offset])]
    if page:
        _fill(c, page)
    return page


def _fill(c: psycopg.Connection[Any], page: list[RunSummary]) -> None:
    by_id = {run.root_id: run for run in page}
    ids = list(by_id)
    for root_id, name, n in c.execute(
        "SELECT root_id, name, count(*) FROM states WHERE root_id = ANY(%s) AND node_id != root_id "
        "GROUP BY root_id, name",
        (ids,),
    ):
        by_id[root_id].counts[name] = n
    for root_id, node_id in c.execute(
        "SELECT root_id, node_id FROM states WHERE root_id = ANY(%s) AND name=%s AND node_id != root_id "
        "ORDER BY created, node_id",
        (ids, FAILED),
    ):
        by_id[root_id].failed.append(node_id)
    params = {"ids": ids, "on_running": list(TIMERS_ON_RUNNING), "on_failed": list(TIMERS_ON_FAILED)}
    for (root_id,) in c.execute(_BUSY, params):
        by_id[root_id].busy = True
