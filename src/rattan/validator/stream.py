"""Stream rules on one pipeline level.

Every node gets exactly one stream label: ``main`` for the start and end events, ``<gateway>_<i>`` for
branch ``i`` of a parallel-type gateway (its converge gateway takes back the gateway's own stream), and
the stream of its predecessors otherwise. A node with two labels was reached across a parallel branch
boundary; a node with none is unreachable. Both are ``StreamValidateError`` problems.
"""

from __future__ import annotations

from collections import deque

from ._common import PARALLEL_TYPES, Problems
from .graph import GraphView

MAIN_STREAM = "main"

_CROSSING = (
    "is reached from more than one stream ({streams}); a flow may not cross a parallel branch boundary "
    "except at the branch's own converge gateway"
)


class _StreamWalk:
    def __init__(self, view: GraphView, matches: dict[str, str]) -> None:
        self.view = view
        self.matches = matches
        self.problems = Problems()
        self.streams: dict[str, set[str]] = {nid: set() for nid in view.order}
        self.streams[view.start_id] = {MAIN_STREAM}
        self.streams[view.end_id] = {MAIN_STREAM}
        # converge of a parallel gateway -> the branch streams it may collect
        self.branch_streams: dict[str, set[str]] = {}
        types = view.types
        for gid in view.order:
            if types[gid] in PARALLEL_TYPES and gid in matches:
                n = len(view.outgoing[gid])
                self.branch_streams[matches[gid]] = {f"{gid}_{i}" for i in range(n)}

    def _report(self, nid: str, source: str) -> None:
        # only report where the crossing happens, not every node downstream of it
        if len(self.streams[source]) <= 1 and len(self.streams[nid]) > 1:
            streams = ", ".join(sorted(self.streams[nid]))
            self.problems.add(
                nid, "stream.crossing", "node " + _CROSSING.format(streams=streams), self.view.name(nid)
            )

    def flow(self, where: str) -> None:
        view = self.view
        streams, matches, branch_streams = self.streams, self.matches, self.branch_streams
        own = streams[where]
        is_parallel = view.types[where] in PARALLEL_TYPES
        if is_parallel and where in matches:
            converge = matches[where]
            streams[converge] |= own
            self._report(converge, where)
        for i, target in enumerate(view.succ[where]):
            fake = False
            if target in branch_streams:
                fake = own <= branch_streams[target] or matches.get(where) == target
            if not fake:
                if is_parallel:
                    streams[target].add(f"{where}_{i}")
                else:
                    streams[target] |= own
            # the _report test inlined (``own`` is ``streams[where]``, the same set object): most
            # flows cross nothing, so the call is only made when a problem may be reported
            if len(own) <= 1 and len(streams[target]) > 1:
                self._report(target, where)

    def run(self) -> dict[str, str]:
        view = self.view
        succ = view.succ
        visited: set[str] = set()
        queue = deque([view.start_id])
        while queue:
            nid = queue.popleft()
            if nid not in visited:
                visited.add(nid)
                queue.extend(succ[nid])
            self.flow(nid)
        labels: dict[str, str] = {}
        crossing = bool(self.problems)
        for nid in view.order:
            streams = self.streams[nid]
            if len(streams) == 1:
                labels[nid] = next(iter(streams))
            elif not streams:
                self.problems.add(
                    nid,
                    "stream.unreachable",
                    "node is not reachable from the start event; connect it or remove it",
                    view.name(nid),
                )
            elif not crossing:
                self.problems.add(
                    nid,
                    "stream.crossing",
                    "node " + _CROSSING.format(streams=", ".join(sorted(streams))),
                    view.name(nid),
                )
        return labels


def check_stream(view: GraphView, matches: dict[str, str]) -> tuple[Problems, dict[str, str]]:
    """Return (problems, node id -> stream label)."""
    walk = _StreamWalk(view, matches)
    labels = walk.run()
    return walk.problems, labels
