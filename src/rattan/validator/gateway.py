"""Gateway / converge matching on one pipeline level.

The algorithm follows bamboo's rules (longest-path distances, forward flows only, inner blocks first),
but every walk is iterative: the recursive "match the nested gateway first" step runs on an explicit
stack of generators, so long chains of blocks or dangling gateways cannot exhaust the Python stack.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from ._common import ACTIVITY_TYPES, EXCLUSIVE, Problems
from .graph import GraphView

# (matched converge id or None, converge shared with other gateways, matching failed)
_Result = tuple[str | None, bool, bool]
_Gen = Generator[str, _Result | None, _Result]

_IN_PARALLEL = (
    "an exclusive gateway inside a parallel block must converge all branches to one converge gateway "
    "(no branch may run to the end event or loop back past the parallel gateway)"
)


def longest_distances(view: GraphView) -> dict[str, int]:
    """Longest path length from the start to every reachable node, ignoring DFS back edges (cycles)."""
    start = view.start_id
    state = {start: 1}
    back: set[str] = set()
    stack = [(start, iter(view.outgoing[start]))]
    while stack:
        nid, it = stack[-1]
        fid = next(it, None)
        if fid is None:
            state[nid] = 2
            stack.pop()
            continue
        target = view.flow_target[fid]
        seen = state.get(target, 0)
        if seen == 0:
            state[target] = 1
            stack.append((target, iter(view.outgoing[target])))
        elif seen == 1:
            back.add(fid)
    indegree = dict.fromkeys(state, 0)
    for nid in state:
        for fid in view.outgoing[nid]:
            if fid not in back:
                indegree[view.flow_target[fid]] += 1
    dist = {start: 0}
    queue = [start]
    while queue:
        nid = queue.pop()
        for fid in view.outgoing[nid]:
            if fid in back:
                continue
            target = view.flow_target[fid]
            dist[target] = max(dist.get(target, 0), dist[nid] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                queue.append(target)
    return dist


@dataclass
class _Gateway:
    id: str
    type: str
    targets: list[str | None]
    match: str | None = None
    shared: bool = False
    done: bool = False
    failed: bool = False
    jumped: set[str] = field(default_factory=set)  # shared converges of other parallel gateways passed by


class GatewayMatcher:
    """Matches every diverging gateway of one pipeline level to its converge gateway."""

    def __init__(self, view: GraphView) -> None:
        self.view = view
        self.problems = Problems()
        self.dist: dict[str, int] = {}
        self.diverging: dict[str, _Gateway] = {}
        self.converges: dict[str, _Gateway] = {}
        self.converge_in: dict[str, int] = {}
        self.converged: dict[str, list[str]] = {}
        self.block_owner: dict[str, set[str]] = {}
        self.stack: list[str] = []

    # ---- public -------------------------------------------------------------------------------------

    def run(self) -> dict[str, str]:
        """Return gateway id -> matched converge id; ``self.problems`` holds any violation."""
        if not self._prepare():
            return {}
        order = sorted(self.diverging, key=lambda g: self.dist[g])
        for gid in order:
            if not self.diverging[gid].done:
                self._trampoline(gid)
        if self.problems:
            return {}
        return {g.id: g.match for g in self.diverging.values() if g.match is not None}

    # ---- preparation --------------------------------------------------------------------------------

    def _fail(self, nid: str, rule: str, message: str) -> None:
        self.problems.add(nid, rule, message, self.view.name(nid))

    def _first_non_activity(self, gid: str, fid: str) -> str | None:
        view = self.view
        types, succ = view.types, view.succ
        target = view.flow_target[fid]
        seen: set[str] = set()
        while types[target] in ACTIVITY_TYPES:
            if target in seen:
                self._fail(
                    gid,
                    "gateway.activity_loop",
                    f"flow {fid} leads into a loop of activities ({target}) that never reaches a gateway "
                    "or the end event; route loops through an exclusive gateway",
                )
                return None
            seen.add(target)
            target = succ[target][0]  # the target of the activity's (only) outgoing flow
        return target

    def _prepare(self) -> bool:
        view = self.view
        self.dist = longest_distances(view)
        for gid in view.gateway_ids():
            if gid not in self.dist:
                self._fail(
                    gid,
                    "gateway.unreachable",
                    "cannot compute the distance of this gateway: it is not reachable from the start event; "
                    "connect it or remove it",
                )
                continue
            targets = [self._first_non_activity(gid, fid) for fid in view.outgoing[gid]]
            gw = _Gateway(id=gid, type=view.types[gid], targets=targets)
            (self.converges if view.is_converge(gid) else self.diverging)[gid] = gw
        if self.problems:
            return False
        for gid, gw in {**self.diverging, **self.converges}.items():
            for t in gw.targets:
                if t is not None and t in self.converges and self.dist[t] > self.dist[gid]:
                    self.converge_in[t] = self.converge_in.get(t, 0) + 1
        return True

    # ---- matching -----------------------------------------------------------------------------------

    def _trampoline(self, gid: str) -> None:
        self.block_owner.setdefault(gid, set())
        gens: list[_Gen] = [self._match(gid, gid)]
        result: _Result | None = None
        while gens:
            try:
                child = gens[-1].send(result)
            except StopIteration as stop:
                gens.pop()
                result = stop.value
                continue
            result = None
            gens.append(self._match(child, gid))

    def _in_other_block(self, nid: str, block: str) -> bool:
        owners = self.block_owner.get(nid)
        if not owners:
            return False
        return len(owners) > 1 or block not in owners

    def _own(self, nid: str, block: str) -> None:
        self.block_owner.setdefault(nid, set()).add(block)

    def _parallel_in_stack(self, start_from: str | None = None) -> bool:
        start = self.stack.index(start_from) if start_from is not None else 0
        return any(self.view.is_parallel(g) for g in self.stack[start:])

    def _can_share(self, gid: str, converge: str) -> bool:
        if not self.view.is_parallel(gid):
            return True
        return not any(g != gid and self.view.is_parallel(g) for g in self.converged.get(converge, []))

    def _match(self, gid: str, block: str) -> _Gen:
        gw = self.diverging.get(gid)
        if gw is None:
            return None, False, False
        if gw.done:
            return gw.match, gw.shared, gw.failed
        self.stack.append(gid)
        failed = False
        for i, first in enumerate(gw.targets):
            if first is None:
                continue
            if self._in_other_block(first, block):
                gw.targets[i] = None
                continue
            self._own(first, block)
            t: str | None = first
            walked: set[str] = set()
            while t is not None and t in self.diverging and t != gid:
                if t in walked:
                    t = None
                    break
                walked.add(t)
                if t in self.stack:
                    if self._parallel_in_stack(start_from=t):
                        self._fail(gid, "gateway.exclusive_in_parallel", _IN_PARALLEL)
                        failed = True
                    t = None
                    break
                answer = yield t
                assert answer is not None
                conv, shared, child_failed = answer
                if child_failed:
                    failed = True
                    t = None
                    break
                if conv is None:
                    t = self.view.end_id
                    continue
                t = conv
                if not shared or not self._can_share(gid, conv):
                    if shared:
                        gw.jumped.add(conv)
                    t = self.converges[conv].targets[0]
            if t is not None and t in self.converges and self.dist[t] < self.dist[gid]:
                t = None
            gw.targets[i] = t
        self.stack.pop()
        if failed:
            gw.done = gw.failed = True
            return None, False, True
        return self._conclude(gw, block)

    def _branch_problem(self, gw: _Gateway, t: str | None) -> None:
        if gw.type == EXCLUSIVE:
            self._fail(
                gw.id, "gateway.invalid", f"invalid gateway: a branch leads to {t}; check its branches"
            )
            return
        for conv in gw.jumped:
            if conv in gw.targets:
                others = [g for g in self.converged.get(conv, []) if self.view.is_parallel(g)]
                self._fail(
                    conv,
                    "gateway.converge_shared_parallel",
                    f"converge may only join branches of one parallel gateway; it joins branches of "
                    f"{', '.join([*others, gw.id])}; give each parallel gateway its own converge gateway",
                )
                return
        where = "the end event" if t == self.view.end_id else ("an earlier node" if t is None else t)
        self._fail(
            gw.id,
            "gateway.parallel_converge",
            f"a branch of this parallel gateway reaches {where} instead of its converge gateway; a parallel "
            "gateway must match exactly one converge gateway that collects all of its branches",
        )

    def _check_targets(self, gw: _Gateway) -> tuple[str | None, int, bool]:
        """Return (first converge, branches that converge, ok)."""
        is_exg = gw.type == EXCLUSIVE
        converge: str | None = None
        converging = len(gw.targets)
        for t in gw.targets:
            if t is not None and t in self.converges:
                if converge is None or converge == t:
                    converge = t
                    continue
                self._fail(
                    gw.id,
                    "gateway.exclusive_converge" if is_exg else "gateway.parallel_converge",
                    f"branches reach different first converge gateways ({converge} and {t}); all branches "
                    "of a gateway must reach the same converge gateway",
                )
                return None, 0, False
            if is_exg and t == self.view.end_id:
                if self._parallel_in_stack():
                    self._fail(gw.id, "gateway.exclusive_in_parallel", _IN_PARALLEL)
                    return None, 0, False
            elif is_exg and (t is None or t == gw.id):
                converging -= 1
            else:
                self._branch_problem(gw, t)
                return None, 0, False
        return converge, converging, True

    def _conclude(self, gw: _Gateway, block: str) -> _Result:
        gw.done = True
        converge, converging, ok = self._check_targets(gw)
        if ok and gw.type == EXCLUSIVE:
            if converge is not None:
                gw.shared = self.converge_in.get(converge, 0) > converging or converge in self.converged
        elif ok:
            ok = self._conclude_parallel(gw, converge)
        if not ok:
            gw.failed = True
            return None, False, True
        gw.match = converge
        if converge is not None:
            self.converged.setdefault(converge, []).append(gw.id)
        self._own(gw.id, block)
        return gw.match, gw.shared, False

    def _conclude_parallel(self, gw: _Gateway, converge: str | None) -> bool:
        if converge is None:
            self._branch_problem(gw, None)
            return False
        n_in = len(self.view.incoming[converge])
        n_branches = len(gw.targets)
        if n_in > n_branches:
            others = [g for g in self.converged.get(converge, []) if self.view.is_parallel(g)]
            if others:
                self._fail(
                    converge,
                    "gateway.converge_shared_parallel",
                    f"converge may only join branches of one parallel gateway; it joins branches of "
                    f"{', '.join([*others, gw.id])}; give each parallel gateway its own converge gateway",
                )
                return False
            gw.shared = True
        elif n_in < n_branches:
            self._fail(
                converge,
                "gateway.converge_incomplete",
                f"converge gateway has {n_in} incoming flow(s) but parallel gateway {gw.id} has "
                f"{n_branches} branches; every branch must reach this converge gateway",
            )
            return False
        return True
