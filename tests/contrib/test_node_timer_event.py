"""Timer boundary events (SPEC 12.2, ``rattan.contrib.node_timer_event``).

Pure helpers (ISO 8601 parsing, ``enabled_events``, ``apply_node_timer_event_configs``) and the
engine side (``policies.arm_timeout`` / ``fire``): events armed when a service activity goes RUNNING,
fired by the durable timer thread, re-armed per repetition from the arming time, no-ops once the
node version is no longer current, surviving an engine restart on the same SQLite file.

Every engine here runs on a ``FakeClock``: time moves only when a test moves it, so a timer due at
T is checked not to fire at T - ``TICK`` and to fire at T, and its firing is recorded by a
recording action (``te_record``) at the engine's clock time, which is exactly T. The node's
``started`` time is the arming time (same step). "Nothing more happens" is: the clock moved far
past every due time, and nothing fired and no timer is left armed. Every wait is bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import (
    EmptyEndEvent,
    EmptyStartEvent,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.contrib.node_timer_event import (
    BaseAction,
    apply_node_timer_event_configs,
    batch_create_node_timer_event_config,
    enabled_events,
    parse_duration,
    parse_timer,
)
from rattan.errors import BadInputError
from rattan.model.messages import FireTimer
from rattan.results import EngineAPIResult
from rattan.testing import FakeClock
from waits import wait_for

FORCED_FAIL_EX_DATA = "forced fail by timer event"
WAIT = 10.0  # real seconds any bounded wait may take
TICK = 0.001  # "just before a due time" (the clock's float resolution at its epoch is ~2.4e-7 s)
FAR = 3600.0  # clock seconds "far past" every due time of these tests


# -- recording actions -------------------------------------------------------------------------------
@dataclass
class Fire:
    at: float  # the engine's clock inside do()
    node_id: str
    version: str
    root_id: str
    engine: Any
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    parent_inputs: dict[str, Any]
    parent_outputs: dict[str, Any]


_FIRES: list[Fire] = []
_FIRES_LOCK = threading.Lock()


def _record(action: BaseAction, data: Any, parent_data: Any) -> None:
    with _FIRES_LOCK:
        _FIRES.append(
            Fire(
                action.engine.clock.now(),
                action.node_id,
                action.version,
                action.root_pipeline_id,
                action.engine,
                dict(data.inputs),
                dict(data.outputs),
                dict(parent_data.inputs),
                dict(parent_data.outputs),
            )
        )


class RecordAction(BaseAction):
    class Meta:
        action_name = "te_record"

    def do(self, data: Any, parent_data: Any, *args: Any, **kwargs: Any) -> bool:
        _record(self, data, parent_data)
        return True


class RaisingAction(BaseAction):
    class Meta:
        action_name = "te_raise"

    def do(self, data: Any, parent_data: Any, *args: Any, **kwargs: Any) -> bool:
        _record(self, data, parent_data)
        raise RuntimeError("timer event action failed on purpose")


def fires(node_id: str) -> list[Fire]:
    with _FIRES_LOCK:
        return [f for f in _FIRES if f.node_id == node_id]


def fire_count(node_id: str) -> int:
    return len(fires(node_id))


# -- components and engines --------------------------------------------------------------------------
def _install(reg: rattan.Registry) -> None:
    """``te_wait``: execute writes outputs ``marker`` and waits for one callback (payload
    ``{"fail": True}`` fails it); ``te_ok``: succeeds at once."""

    class Wait(rattan.Service):
        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.marker = f"seen-{data.inputs.get('x')}"
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            data.outputs.got = callback_data
            return not (isinstance(callback_data, dict) and callback_data.get("fail"))

    class Ok(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.done = True
            return True

    for code, service in {"te_wait": Wait, "te_ok": Ok}.items():
        type(
            f"Comp_{code}",
            (rattan.Component,),
            {"name": code, "code": code, "bound_service": service},
            registry=reg,
        )


@pytest.fixture
def reg() -> rattan.Registry:
    registry = rattan.Registry("timer-event-tests")
    _install(registry)
    return registry


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_engine(reg: rattan.Registry, clock: FakeClock) -> Iterator[Callable[..., rattan.Engine]]:
    """Engines on the test's ``clock`` (engines reopened on one store share it)."""
    made: list[rattan.Engine] = []

    def make(store: str = ":memory:", **overrides: Any) -> rattan.Engine:
        overrides.setdefault("clock", clock)
        eng = rattan.Engine(store, components=reg, **overrides)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.close(timeout=10)


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    return make_engine()


# -- polling -----------------------------------------------------------------------------------------
def wait_state(engine: rattan.Engine, node_id: str, state: str, timeout: float = WAIT) -> Any:
    def check() -> Any:
        st = engine.get_state_or_none(node_id)
        return st if st is not None and st.name == state else None

    try:
        return wait_for(check, timeout)
    except AssertionError:
        st = engine.get_state_or_none(node_id)
        raise AssertionError(f"node {node_id} not {state} within {timeout}s: {st}") from None


def wait_waiting(engine: rattan.Engine, node_id: str, timeout: float = WAIT) -> Any:
    """Wait until the node is RUNNING and has its callback schedule (execute done); return the state."""

    def check() -> Any:
        st = engine.get_state_or_none(node_id)
        if st is None or st.name != "RUNNING":
            return None
        try:
            engine.get_schedule_with_node_and_version(node_id, st.version)
        except rattan.NotFoundError:
            return None
        return st

    return wait_for(check, timeout)


def armed(engine: rattan.Engine) -> list[float]:
    """Due times of the durable timers armed and not yet due, earliest first."""
    return [due for due, msg in engine.dispatcher.pending_timers() if isinstance(msg, FireTimer)]


def settle(engine: rattan.Engine) -> None:
    """Wait until the engine has no queued or running work (armed timers may remain)."""
    assert engine.wait_idle(WAIT), f"engine not idle within {WAIT}s"


def fire_at(engine: rattan.Engine, clock: FakeClock, node_id: str, due: float, count: int) -> Fire:
    """The ``count``-th firing on ``node_id`` is armed for ``due``: it has not come when the clock is
    just before ``due``, and comes, recorded at exactly ``due``, once the clock is there."""
    settle(engine)
    assert due in armed(engine), (due, armed(engine))
    clock.set(due - TICK)
    settle(engine)
    assert fire_count(node_id) == count - 1, offsets(node_id, due)
    assert due in armed(engine), "fired before its due time"
    clock.set(due)
    wait_for(lambda: fire_count(node_id) >= count)
    got = fires(node_id)[count - 1]
    assert got.at == due, (got.at, due)
    return got


def move_far(engine: rattan.Engine, clock: FakeClock) -> None:
    """Move the clock far past every due time and wait until what was due has been handled."""
    clock.advance(FAR)
    now = clock.now()
    wait_for(lambda: all(due > now for due, _ in engine.dispatcher.pending_timers()))
    settle(engine)


def timer_events_of(engine: rattan.Engine, root_id: str, node_id: str) -> list[dict[str, Any]]:
    return [
        e for e in engine.events(root_id) if e["event_type"] == "node_timer_event" and e["node_id"] == node_id
    ]


def ok(res: EngineAPIResult) -> Any:
    assert isinstance(res, EngineAPIResult)
    assert res.result is True, (res.message, res.exc_trace)
    return res.data


# -- trees -------------------------------------------------------------------------------------------
def ev(timer_type: str, defined: str, action: str = "te_record", enable: bool = True) -> dict[str, Any]:
    return {"enable": enable, "action": action, "timer_type": timer_type, "defined": defined}


def waiting_act(**inputs: Any) -> ServiceActivity:
    node = ServiceActivity(component_code="te_wait")
    for key, value in inputs.items():
        node.component.inputs[key] = Var(type=Var.PLAIN, value=value)
    return node


def chain_tree(*acts: Any) -> dict[str, Any]:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    cur: Any = start
    for a in acts:
        cur = cur.extend(a)
    cur.extend(end)
    return build_tree(start)


def one_node_run(
    engine: rattan.Engine, events: list[dict[str, Any]], **run_options: Any
) -> tuple[str, str, dict[str, Any]]:
    """Run ``start → te_wait (with ``events``) → end``; return (root id, node id, tree)."""
    a = waiting_act(x=1)
    tree = chain_tree(a)
    ok(apply_node_timer_event_configs(tree, {a.id: events}))
    ok(api.run_pipeline(engine, tree, **run_options))
    return str(tree["id"]), a.id, tree


def finish_by_callback(engine: rattan.Engine, node_id: str, payload: Any = "done") -> Any:
    st = wait_waiting(engine, node_id)
    ok(api.callback(engine, node_id, st.version, payload))
    return wait_state(engine, node_id, "FINISHED")


def offsets(node_id: str, start: float) -> list[float]:
    return [round(f.at - start, 3) for f in fires(node_id)]


# =====================================================================================================
# parse_duration
# =====================================================================================================
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT1H30M", 5400.0),
        ("P1DT2S", 86402.0),
        ("PT0.5S", 0.5),
        ("PT2S", 2.0),
        ("PT1M", 60.0),
        ("P1D", 86400.0),
        ("P2W", 14 * 86400.0),
        ("P1M", 30 * 86400.0),  # months are 30 days
        ("P1Y", 365 * 86400.0),  # years are 365 days
        ("PT1.5H", 5400.0),
        ("P1Y2M3DT4H5M6.25S", 365 * 86400.0 + 60 * 86400.0 + 3 * 86400.0 + 4 * 3600.0 + 5 * 60.0 + 6.25),
        ("PT0S", 0.0),
    ],
)
@pytest.mark.timeout(60)
def test_parse_duration_valid(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "1H",
        "PT1X",
        "P1H",
        "PT-1S",
        "T1S",
        "pt1s",
        "PT1S ",
        "hello",
        "R3/PT1S",
        "PT1M1H",
    ],
)
@pytest.mark.timeout(60)
def test_parse_duration_invalid_raises_bad_input(text: str) -> None:
    with pytest.raises(BadInputError):
        parse_duration(text)


@pytest.mark.timeout(60)
def test_parse_duration_none_raises_bad_input() -> None:
    with pytest.raises(BadInputError):
        parse_duration(None)  # type: ignore[arg-type]


# =====================================================================================================
# parse_timer
# =====================================================================================================
@pytest.mark.timeout(60)
def test_parse_timer_time_date_aware() -> None:
    when, period, times = parse_timer("time_date", "2030-01-02T03:04:05+08:00")
    expected = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8))).timestamp()
    assert when == pytest.approx(expected)
    assert (period, times) == (0.0, 1)
    # the same instant in UTC and with the "Z" suffix
    assert parse_timer("time_date", "2030-01-01T19:04:05+00:00")[0] == pytest.approx(expected)
    assert parse_timer("time_date", "2030-01-01T19:04:05Z")[0] == pytest.approx(expected)


@pytest.mark.timeout(60)
def test_parse_timer_time_date_naive_is_utc() -> None:
    when, period, times = parse_timer("time_date", "2030-01-02T03:04:05")
    assert when == pytest.approx(datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    assert (period, times) == (0.0, 1)
    frac = parse_timer("time_date", "2030-01-02T03:04:05.250000")[0]
    assert frac == pytest.approx(datetime(2030, 1, 2, 3, 4, 5, 250000, tzinfo=UTC).timestamp())


@pytest.mark.timeout(60)
def test_parse_timer_time_duration() -> None:
    assert parse_timer("time_duration", "PT1H30M") == (None, 5400.0, 1)
    assert parse_timer("time_duration", "PT0.5S") == (None, 0.5, 1)


@pytest.mark.timeout(60)
def test_parse_timer_time_cycle_bounded_and_unbounded() -> None:
    assert parse_timer("time_cycle", "R3/PT1S") == (None, 1.0, 3)
    assert parse_timer("time_cycle", "R12/PT0.2S") == (None, 0.2, 12)
    # rattan deviation: "R/<duration>" parses and means unbounded (None)
    assert parse_timer("time_cycle", "R/PT1S") == (None, 1.0, None)


@pytest.mark.parametrize(
    ("timer_type", "defined"),
    [
        ("time_date", "not a date"),
        ("time_date", ""),
        ("time_date", "PT1S"),
        ("time_date", None),
        ("time_duration", "R3/PT1S"),
        ("time_duration", "1 hour"),
        ("time_duration", ""),
        ("time_duration", None),
        ("time_cycle", "PT1S"),
        ("time_cycle", "R3/"),
        ("time_cycle", "R3/xx"),
        ("time_cycle", "Rx/PT1S"),
        ("time_cycle", "R3PT1S"),
        ("time_cycle", "R-1/PT1S"),
        ("time_cycle", None),
        ("time_date_x", "2030-01-01T00:00:00"),
        ("timer", "PT1S"),
        ("", "PT1S"),
        (None, "PT1S"),
    ],
)
@pytest.mark.timeout(60)
def test_parse_timer_bad_input(timer_type: Any, defined: Any) -> None:
    with pytest.raises(BadInputError):
        parse_timer(timer_type, defined)


@pytest.mark.timeout(60)
def test_bad_input_error_is_a_rattan_error() -> None:
    with pytest.raises(rattan.errors.BadInputError):
        parse_timer("time_cycle", "every second")


# =====================================================================================================
# enabled_events
# =====================================================================================================
@pytest.mark.timeout(60)
def test_enabled_events_skips_disabled_and_unparsable_without_consuming_an_index() -> None:
    configs = [
        ev("time_duration", "PT1S", enable=False),  # disabled
        ev("time_duration", "PT2S"),  # index 1
        ev("time_cycle", "every 3s"),  # unparsable
        "not a dict",
        ev("time_bogus", "PT1S"),  # unknown type
        {"enable": True, "action": "te_record"},  # no timer_type / defined
        ev("time_cycle", "R/PT1S"),  # index 2
        {**ev("time_duration", "PT3S"), "enable": 0},  # falsy enable
        ev("time_date", "2030-01-01T00:00:00Z"),  # index 3
    ]
    out = enabled_events({"events": {"timer_events": configs}})
    assert [i for i, _ in out] == [1, 2, 3]
    assert [c["defined"] for _, c in out] == ["PT2S", "R/PT1S", "2030-01-01T00:00:00Z"]
    # returned configs are copies
    out[0][1]["defined"] = "changed"
    assert configs[1]["defined"] == "PT2S"


@pytest.mark.parametrize(
    "act",
    [
        {},
        {"events": None},
        {"events": "timers"},
        {"events": {}},
        {"events": {"timer_events": None}},
        {"events": {"timer_events": []}},
        {"events": {"timer_events": [ev("time_duration", "PT1S", enable=False)]}},
    ],
)
@pytest.mark.timeout(60)
def test_enabled_events_nothing_enabled(act: dict[str, Any]) -> None:
    assert enabled_events(act) == []


# =====================================================================================================
# apply_node_timer_event_configs
# =====================================================================================================
def _nested_tree() -> tuple[dict[str, Any], str, str, str, str]:
    """start → a → sub(start → inner → end) → b → end; returns (tree, a, sub, inner, b)."""
    inner = waiting_act()
    sub_start, sub_end = EmptyStartEvent(), EmptyEndEvent()
    sub_start.extend(inner).extend(sub_end)
    sub = SubProcess(start=sub_start)
    a, b = waiting_act(), ServiceActivity(component_code="te_ok")
    tree = chain_tree(a, sub, b)
    return tree, a.id, sub.id, inner.id, b.id


@pytest.mark.timeout(60)
def test_apply_configs_writes_events_recursing_into_subprocesses() -> None:
    tree, a, sub, inner, b = _nested_tree()
    cfg_a = [ev("time_duration", "PT1S"), ev("time_cycle", "R2/PT1S", action="example")]
    cfg_inner = [ev("time_date", "2030-01-01T00:00:00Z", action="bamboo_engine_forced_fail")]
    res = apply_node_timer_event_configs(
        tree, {a: cfg_a, inner: cfg_inner, "missing-node": [ev("time_duration", "PT1S")]}
    )
    assert isinstance(res, EngineAPIResult)
    assert res.result is True
    assert res.exc is None
    # rattan fix of the stale-copy quirk: the argument is mutated and returned
    assert res.data is tree
    acts = tree["activities"]
    assert acts[a]["events"]["timer_events"] == cfg_a
    assert acts[sub]["pipeline"]["activities"][inner]["events"]["timer_events"] == cfg_inner
    assert "timer_events" not in (acts[b].get("events") or {})
    assert "timer_events" not in (acts[sub].get("events") or {})
    # the configs are copied, not shared
    cfg_a[0]["defined"] = "PT9S"
    assert acts[a]["events"]["timer_events"][0]["defined"] == "PT1S"


@pytest.mark.timeout(60)
def test_apply_configs_replaces_existing_events_and_keeps_other_event_keys() -> None:
    tree, a, _sub, _inner, _b = _nested_tree()
    tree["activities"][a]["events"] = {"timer_events": [ev("time_duration", "PT5S")], "other": 1}
    ok(apply_node_timer_event_configs(tree, {a: [ev("time_duration", "PT7S")]}))
    assert tree["activities"][a]["events"] == {"timer_events": [ev("time_duration", "PT7S")], "other": 1}


@pytest.mark.timeout(60)
def test_apply_configs_empty_configs_is_a_noop() -> None:
    tree, *_ = _nested_tree()
    before = repr(tree)
    res = apply_node_timer_event_configs(tree, {})
    assert res.result is True
    assert res.data is tree
    assert repr(tree) == before


@pytest.mark.parametrize("bad", [ev("time_duration", "PT1S"), "PT1S", None, 3])
@pytest.mark.timeout(60)
def test_apply_configs_bad_config_is_refused(bad: Any) -> None:
    tree, a, *_ = _nested_tree()
    before = repr(tree)
    res = apply_node_timer_event_configs(tree, {a: bad})
    assert isinstance(res, EngineAPIResult)
    assert res.result is False
    assert isinstance(res.exc, BadInputError)
    assert a in res.message
    assert res.data is None
    assert repr(tree) == before  # nothing written


@pytest.mark.timeout(60)
def test_batch_create_is_a_compatible_noop() -> None:
    tree, *_ = _nested_tree()
    res = batch_create_node_timer_event_config(tree["id"], tree)
    assert isinstance(res, EngineAPIResult)
    assert res.result is True


# =====================================================================================================
# actions
# =====================================================================================================
@pytest.mark.timeout(60)
def test_builtin_actions_are_registered() -> None:
    for name in ("example", "bamboo_engine_forced_fail", "bamboo_engine_forced_fail_and_skip", "te_record"):
        assert name in BaseAction.registry
        assert issubclass(BaseAction.registry[name], BaseAction)
        assert BaseAction.registry[name].Meta.action_name == name


@pytest.mark.timeout(60)
def test_duplicate_action_name_raises() -> None:
    with pytest.raises(BadInputError, match="te_record"):

        class Other(BaseAction):
            class Meta:
                action_name = "te_record"

    assert BaseAction.registry["te_record"] is RecordAction


@pytest.mark.timeout(60)
def test_base_action_do_is_abstract(engine: rattan.Engine) -> None:
    with pytest.raises(BadInputError):
        BaseAction(engine, "p", "n", "v").do(None, None)  # type: ignore[arg-type]


# =====================================================================================================
# engine: firing
# =====================================================================================================
@pytest.mark.timeout(60)
def test_time_duration_fires_once_after_its_duration(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(engine, [ev("time_duration", "PT0.4S")])
    st = wait_waiting(engine, a)
    assert st.started == clock.now()  # armed when it went RUNNING, on the engine's clock
    fire_at(engine, clock, a, st.started + 0.4, 1)
    move_far(engine, clock)  # nothing more comes
    got = fires(a)
    assert len(got) == 1, offsets(a, st.started)
    assert armed(engine) == []
    assert got[0].version == st.version
    assert got[0].root_id == root
    assert got[0].engine is engine
    assert engine.get_state(a).name == "RUNNING"  # the recording action does not touch the node
    assert [e["data"] for e in timer_events_of(engine, root, a)] == [
        {"node_id": a, "index": 1, "action": "te_record"}
    ]
    finish_by_callback(engine, a)
    wait_state(engine, root, "FINISHED")


@pytest.mark.timeout(60)
def test_time_cycle_fires_n_times_without_drift(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(engine, [ev("time_cycle", "R3/PT0.2S")])
    start = float(wait_waiting(engine, a).started)
    for k in (1, 2, 3):
        fire_at(engine, clock, a, start + 0.2 * k, k)
        settle(engine)
        # repetition k+1 is re-armed from the arming time, not from the firing time; none after R3
        assert armed(engine) == ([start + 0.2 * (k + 1)] if k < 3 else []), (k, armed(engine))
    move_far(engine, clock)  # a 4th repetition would be due at 0.8 s
    assert [f.at for f in fires(a)] == [start + 0.2 * k for k in (1, 2, 3)], offsets(a, start)
    assert [e["data"]["index"] for e in timer_events_of(engine, root, a)] == [1, 1, 1]
    assert engine.dispatcher.pending_timers() == []
    finish_by_callback(engine, a)


@pytest.mark.timeout(60)
def test_time_cycle_late_firing_does_not_shift_later_repetitions(
    engine: rattan.Engine, clock: FakeClock
) -> None:
    """A repetition handled late fires at once; the next one stays due at arming time + k periods,
    and repetitions overdue together each fire once."""
    root, a, _ = one_node_run(engine, [ev("time_cycle", "R4/PT0.2S")])
    start = float(wait_waiting(engine, a).started)
    clock.set(start + 0.25)  # repetition 1 (due at 0.2 s) is seen late
    wait_for(lambda: fire_count(a) >= 1)
    settle(engine)
    assert armed(engine) == [start + 0.2 * 2]  # not 0.25 + 0.2
    fire_at(engine, clock, a, start + 0.2 * 2, 2)
    clock.set(start + 0.85)  # repetitions 3 (0.6 s) and 4 (0.8 s) are both overdue
    wait_for(lambda: fire_count(a) >= 4)
    move_far(engine, clock)
    assert [f.at for f in fires(a)] == [start + 0.25, start + 0.2 * 2, start + 0.85, start + 0.85]
    assert [e["data"]["index"] for e in timer_events_of(engine, root, a)] == [1, 1, 1, 1]
    assert engine.dispatcher.pending_timers() == []
    finish_by_callback(engine, a)


@pytest.mark.timeout(60)
def test_time_cycle_unbounded_fires_until_node_leaves_running(
    engine: rattan.Engine, clock: FakeClock
) -> None:
    root, a, _ = one_node_run(engine, [ev("time_cycle", "R/PT0.2S")])
    st = wait_waiting(engine, a)
    for k in range(1, 6):
        fire_at(engine, clock, a, st.started + 0.2 * k, k)
    settle(engine)
    assert armed(engine) == [st.started + 0.2 * 6]  # unbounded: the next repetition is armed
    finished = finish_by_callback(engine, a)
    assert finished.archived == st.started + 0.2 * 5
    n_events = len(timer_events_of(engine, root, a))
    assert n_events == 5
    move_far(engine, clock)  # the armed 6th repetition comes due, and thousands of periods more
    assert len(timer_events_of(engine, root, a)) == n_events  # no firing after FINISHED
    assert fire_count(a) == n_events  # every fired event ran its action once, nothing else
    assert armed(engine) == []  # the stale repetition was not re-armed
    assert all(f.at <= finished.archived for f in fires(a)), (offsets(a, st.started), finished)
    # in the durable log every firing comes before the node finished
    log = [(e["event_type"], e["node_id"]) for e in engine.events(root)]
    assert ("node_timer_event", a) not in log[log.index(("node_finish", a)) :]
    wait_state(engine, root, "FINISHED")


@pytest.mark.timeout(60)
def test_time_date_in_the_past_fires_at_once(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(
        engine, [ev("time_date", "2000-01-01T00:00:00+00:00"), ev("time_date", "2001-01-01T00:00:00")]
    )
    st = wait_state(engine, a, "RUNNING")
    wait_for(lambda: fire_count(a) >= 2)  # the clock has not moved
    move_far(engine, clock)
    assert len(fires(a)) == 2
    assert all(f.at == st.started for f in fires(a)), offsets(a, st.started)
    assert sorted(e["data"]["index"] for e in timer_events_of(engine, root, a)) == [1, 2]
    assert armed(engine) == []
    finish_by_callback(engine, a)


@pytest.mark.timeout(60)
def test_time_date_in_the_future_fires_at_that_time(engine: rattan.Engine, clock: FakeClock) -> None:
    target = datetime.fromtimestamp(clock.now(), UTC) + timedelta(seconds=0.7)
    naive_target = (target + timedelta(seconds=0.3)).replace(tzinfo=None)  # naive: read as UTC
    root, a, _ = one_node_run(
        engine, [ev("time_date", target.isoformat()), ev("time_date", naive_target.isoformat())]
    )
    wait_waiting(engine, a)
    target_ts = target.timestamp()
    naive_ts = naive_target.replace(tzinfo=UTC).timestamp()
    settle(engine)
    assert armed(engine) == [target_ts, naive_ts]
    fire_at(engine, clock, a, target_ts, 1)
    fire_at(engine, clock, a, naive_ts, 2)
    move_far(engine, clock)
    assert [f.at for f in fires(a)] == [target_ts, naive_ts]
    assert [e["data"]["index"] for e in timer_events_of(engine, root, a)] == [1, 2]
    assert armed(engine) == []
    finish_by_callback(engine, a)


@pytest.mark.timeout(60)
def test_event_indices_skip_disabled_and_unparsable_entries(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(
        engine,
        [
            ev("time_duration", "PT0.1S", enable=False),
            ev("time_duration", "PT0.2S"),
            ev("time_duration", "soon"),
            ev("time_duration", "PT0.4S", action="example"),
        ],
    )
    st = wait_waiting(engine, a)
    settle(engine)
    assert armed(engine) == [st.started + 0.2, st.started + 0.4]  # nothing for the disabled one
    fire_at(engine, clock, a, st.started + 0.2, 1)
    clock.set(st.started + 0.4)
    wait_for(lambda: len(timer_events_of(engine, root, a)) >= 2)
    move_far(engine, clock)
    assert [e["data"] for e in timer_events_of(engine, root, a)] == [
        {"node_id": a, "index": 1, "action": "te_record"},
        {"node_id": a, "index": 2, "action": "example"},
    ]
    assert fire_count(a) == 1  # only the te_record event ran our action
    assert armed(engine) == []
    finish_by_callback(engine, a)


@pytest.mark.timeout(60)
def test_forced_fail_action_fails_the_node(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(engine, [ev("time_duration", "PT0.3S", action="bamboo_engine_forced_fail")])
    running = wait_waiting(engine, a)
    due = running.started + 0.3
    settle(engine)
    assert armed(engine) == [due]
    clock.set(due - TICK)
    settle(engine)
    assert engine.get_state(a).version == running.version
    clock.set(due)
    failed = wait_state(engine, a, "FAILED")
    assert failed.version != running.version
    assert failed.archived == due
    assert failed.skip is False
    data = ok(api.get_execution_data(engine, a))
    assert data["outputs"]["ex_data"] == FORCED_FAIL_EX_DATA
    assert ok(api.get_execution_data_outputs(engine, a))["ex_data"] == FORCED_FAIL_EX_DATA
    assert engine.wait_idle(WAIT)
    assert engine.get_state(root).name == "RUNNING"  # a failed node never fails its pipeline
    assert engine.get_state(a).name == "FAILED"


@pytest.mark.timeout(60)
def test_forced_fail_and_skip_action_finishes_the_node_skipped(
    engine: rattan.Engine, clock: FakeClock
) -> None:
    a = waiting_act()
    b = ServiceActivity(component_code="te_ok")
    tree = chain_tree(a, b)
    tree["activities"][a.id]["events"] = {
        "timer_events": [ev("time_duration", "PT0.3S", action="bamboo_engine_forced_fail_and_skip")]
    }
    ok(api.run_pipeline(engine, tree))
    running = wait_waiting(engine, a.id)
    due = running.started + 0.3
    settle(engine)
    assert armed(engine) == [due]
    clock.set(due - TICK)
    settle(engine)
    assert engine.get_state(a.id).version == running.version
    assert engine.get_state_or_none(b.id) is None
    clock.set(due)
    done = wait_state(engine, a.id, "FINISHED")
    assert done.skip is True
    assert done.version != running.version
    assert done.archived == due
    assert ok(api.get_execution_data_outputs(engine, a.id))["ex_data"] == FORCED_FAIL_EX_DATA
    wait_state(engine, tree["id"], "FINISHED")  # the run goes on past the skipped node
    assert engine.get_state(b.id).name == "FINISHED"
    states = ok(api.get_pipeline_states(engine, tree["id"]))[tree["id"]]["children"]
    assert states[a.id]["skip"] is True


@pytest.mark.timeout(60)
def test_forced_fail_on_a_cycle_stops_further_repetitions(engine: rattan.Engine, clock: FakeClock) -> None:
    """The first repetition force-fails the node: the re-armed later ones are stale and do nothing."""
    root, a, _ = one_node_run(
        engine,
        [ev("time_cycle", "R4/PT0.2S", action="bamboo_engine_forced_fail"), ev("time_cycle", "R/PT0.1S")],
    )
    st = wait_waiting(engine, a)
    fire_at(engine, clock, a, st.started + 0.1, 1)  # the recording cycle (index 2) runs
    clock.set(st.started + 0.2)  # the forced fail (index 1) is due, with the recording cycle's 2nd
    failed = wait_state(engine, a, "FAILED")
    assert failed.archived == st.started + 0.2
    settle(engine)
    n = fire_count(a)
    assert n in (1, 2)  # the recording repetition due at the same time saw RUNNING or not
    move_far(engine, clock)
    assert fire_count(a) == n
    assert armed(engine) == []  # the stale repetitions fired as no-ops and were not re-armed
    assert [e["data"]["index"] for e in timer_events_of(engine, root, a)].count(1) == 1
    assert engine.get_state(a).name == "FAILED"


@pytest.mark.timeout(60)
def test_timer_events_do_not_fire_after_the_node_finished(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(
        engine,
        [
            ev("time_duration", "PT0.4S"),
            ev("time_cycle", "R3/PT0.3S"),
            ev("time_date", datetime.fromtimestamp(clock.now() + 0.5, UTC).isoformat()),
            ev("time_duration", "PT0.4S", action="bamboo_engine_forced_fail"),
        ],
    )
    st = wait_waiting(engine, a)
    settle(engine)
    assert len(armed(engine)) == 4 and armed(engine)[0] == st.started + 0.3
    finished = finish_by_callback(engine, a)
    assert finished.archived == finished.started  # finished before any event was due
    move_far(engine, clock)
    assert fires(a) == []
    assert timer_events_of(engine, root, a) == []
    assert armed(engine) == []  # every one came due, did nothing, and re-armed nothing
    assert engine.get_state(a).name == "FINISHED"  # the forced_fail event did not touch it
    wait_state(engine, root, "FINISHED")
    assert engine.wait_idle(WAIT)


@pytest.mark.timeout(60)
def test_timer_of_an_old_version_does_nothing_after_retry(engine: rattan.Engine, clock: FakeClock) -> None:
    """Fail the node before its event is due and retry it: only the new version's event fires,
    measured from the new RUNNING time."""
    root, a, _ = one_node_run(engine, [ev("time_duration", "PT0.6S")])
    first = wait_waiting(engine, a)
    ok(api.callback(engine, a, first.version, {"fail": True}))
    wait_state(engine, a, "FAILED")
    clock.advance(0.2)
    ok(api.retry_node(engine, a))
    second = wait_waiting(engine, a)
    assert second.version != first.version
    assert second.started == first.started + 0.2
    settle(engine)
    assert armed(engine) == [first.started + 0.6, second.started + 0.6]
    clock.set(first.started + 0.6)  # the old version's event comes due: it does nothing
    wait_for(lambda: armed(engine) == [second.started + 0.6])
    settle(engine)
    assert fires(a) == []
    fire_at(engine, clock, a, second.started + 0.6, 1)
    move_far(engine, clock)
    got = fires(a)
    assert len(got) == 1, [(f.version, f.at - first.started) for f in got]
    assert got[0].version == second.version
    assert got[0].at == second.started + 0.6
    assert armed(engine) == []
    finish_by_callback(engine, a)
    wait_state(engine, root, "FINISHED")


@pytest.mark.timeout(60)
def test_action_receives_node_execution_data_and_root_data(engine: rattan.Engine, clock: FakeClock) -> None:
    a = waiting_act(x=41, label="hello")
    tree = chain_tree(a)
    ok(apply_node_timer_event_configs(tree, {a.id: [ev("time_duration", "PT0.3S")]}))
    ok(api.run_pipeline(engine, tree, root_pipeline_data={"operator": "alice", "biz": 7}))
    st = wait_waiting(engine, a.id)
    got = fire_at(engine, clock, a.id, st.started + 0.3, 1)
    exec_data = ok(api.get_execution_data(engine, a.id))
    assert got.inputs == exec_data["inputs"]
    assert got.inputs["x"] == 41
    assert got.inputs["label"] == "hello"
    assert got.outputs == exec_data["outputs"]
    assert got.outputs["marker"] == "seen-41"
    assert {"operator": "alice", "biz": 7}.items() <= got.parent_inputs.items()
    assert got.parent_outputs == {}
    assert got.node_id == a.id
    assert got.root_id == tree["id"]
    finish_by_callback(engine, a.id)


@pytest.mark.timeout(60)
def test_timer_events_inside_a_subprocess(engine: rattan.Engine, clock: FakeClock) -> None:
    tree, _a, _sub, inner, _b = _nested_tree()
    ok(apply_node_timer_event_configs(tree, {inner: [ev("time_duration", "PT0.2S")]}))
    # the first activity finishes at once by callback, then the nested one waits
    ok(api.run_pipeline(engine, tree))
    finish_by_callback(engine, _a)
    st = wait_waiting(engine, inner)
    got = fire_at(engine, clock, inner, st.started + 0.2, 1)
    assert got.root_id == tree["id"]
    finish_by_callback(engine, inner)
    wait_state(engine, tree["id"], "FINISHED")
    assert fire_count(inner) == 1


@pytest.mark.timeout(60)
def test_a_raising_action_does_not_stop_later_repetitions(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(engine, [ev("time_cycle", "R3/PT0.15S", action="te_raise")])
    st = wait_waiting(engine, a)
    for k in (1, 2, 3):
        fire_at(engine, clock, a, st.started + 0.15 * k, k)
    move_far(engine, clock)
    assert fire_count(a) == 3
    assert armed(engine) == []
    assert engine.wait_idle(WAIT)
    assert engine.get_state(a).name == "RUNNING"
    finish_by_callback(engine, a)
    wait_state(engine, root, "FINISHED")


@pytest.mark.timeout(60)
def test_unknown_action_is_logged_and_does_not_break_the_node(
    engine: rattan.Engine, clock: FakeClock
) -> None:
    root, a, _ = one_node_run(engine, [ev("time_duration", "PT0.1S", action="te_no_such_action")])
    st = wait_waiting(engine, a)
    clock.set(st.started + 0.1)
    wait_for(lambda: timer_events_of(engine, root, a))
    assert engine.wait_idle(WAIT)
    assert engine.get_state(a).name == "RUNNING"
    finish_by_callback(engine, a)
    wait_state(engine, root, "FINISHED")


@pytest.mark.timeout(60)
def test_timer_events_not_a_list_is_refused_at_run(engine: rattan.Engine) -> None:
    a = waiting_act()
    tree = chain_tree(a)
    tree["activities"][a.id]["events"] = {"timer_events": ev("time_duration", "PT1S")}
    res = api.run_pipeline(engine, tree)
    assert res.result is False
    assert "timer_events" in res.message or "timer_events" in repr(res.exc)


# =====================================================================================================
# durability
# =====================================================================================================
@pytest.mark.timeout(60)
def test_timer_events_survive_an_engine_restart(
    make_engine: Callable[..., rattan.Engine], clock: FakeClock, tmp_path: Path
) -> None:
    db = str(tmp_path / "timers.sqlite")
    first = make_engine(db)
    a = waiting_act(x=5)
    tree = chain_tree(a)
    ok(
        apply_node_timer_event_configs(
            tree,
            {a.id: [ev("time_duration", "PT1.2S"), ev("time_duration", "PT0.4S")]},  # 2nd due while down
        )
    )
    ok(api.run_pipeline(first, tree))
    st = wait_waiting(first, a.id)
    settle(first)
    assert armed(first) == [st.started + 0.4, st.started + 1.2]
    first.close(timeout=10)
    clock.set(st.started + 0.7)  # the second event comes due while no engine runs
    assert fires(a.id) == []

    second = make_engine(db)
    reopened = clock.now()
    wait_for(lambda: fire_count(a.id) >= 1)  # the overdue one fires at once on restart ...
    fire_at(second, clock, a.id, st.started + 1.2, 2)  # ... the other on time
    move_far(second, clock)
    got = fires(a.id)
    assert len(got) == 2, offsets(a.id, st.started)
    late, due = got
    assert late.at == reopened
    assert due.at == st.started + 1.2
    assert all(f.engine is second for f in got)
    assert all(f.version == st.version for f in got)
    assert late.outputs["marker"] == "seen-5"
    assert sorted(e["data"]["index"] for e in timer_events_of(second, tree["id"], a.id)) == [1, 2]
    assert armed(second) == []
    finish_by_callback(second, a.id)
    wait_state(second, tree["id"], "FINISHED")


@pytest.mark.timeout(60)
def test_cycle_survives_restart_and_keeps_its_arming_schedule(
    make_engine: Callable[..., rattan.Engine], clock: FakeClock, tmp_path: Path
) -> None:
    db = str(tmp_path / "cycle.sqlite")
    first = make_engine(db)
    root, a, _ = one_node_run(first, [ev("time_cycle", "R4/PT0.3S")])
    st = wait_waiting(first, a)
    fire_at(first, clock, a, st.started + 0.3 * 1, 1)
    settle(first)
    assert armed(first) == [st.started + 0.3 * 2]
    first.close(timeout=10)
    n_before = fire_count(a)
    assert n_before == 1
    clock.set(st.started + 0.45)  # time passes while no engine runs; nothing is due yet
    second = make_engine(db)
    for k in (2, 3, 4):  # the claimed cycle keeps its arming time
        fire_at(second, clock, a, st.started + 0.3 * k, k)
    move_far(second, clock)
    assert [f.at for f in fires(a)] == [st.started + 0.3 * k for k in (1, 2, 3, 4)], offsets(a, st.started)
    assert [f.engine for f in fires(a)] == [first, second, second, second]
    assert armed(second) == []
    finish_by_callback(second, a)
    wait_state(second, root, "FINISHED")


# =====================================================================================================
# engine bugs this suite found (fixed): zero repetitions, revoked pipelines
# =====================================================================================================
@pytest.mark.timeout(60)
def test_time_cycle_r0_never_fires(engine: rattan.Engine, clock: FakeClock) -> None:
    assert parse_timer("time_cycle", "R0/PT0.1S") == (None, 0.1, 0)
    _root, a, _ = one_node_run(engine, [ev("time_cycle", "R0/PT0.1S")])
    wait_waiting(engine, a)
    settle(engine)
    assert armed(engine) == []
    move_far(engine, clock)
    assert fire_count(a) == 0
    finish_by_callback(engine, a)


@pytest.mark.timeout(60)
def test_timer_events_stop_when_the_pipeline_is_revoked(engine: rattan.Engine, clock: FakeClock) -> None:
    root, a, _ = one_node_run(engine, [ev("time_cycle", "R/PT0.2S")])
    st = wait_waiting(engine, a)
    fire_at(engine, clock, a, st.started + 0.2, 1)  # it fires while the pipeline runs
    ok(api.revoke_pipeline(engine, root))
    wait_state(engine, root, "REVOKED")
    settle(engine)
    n = fire_count(a)
    assert n == 1
    assert armed(engine) == [st.started + 0.2 * 2]  # armed before the revoke
    move_far(engine, clock)
    assert fire_count(a) == n
    assert len(timer_events_of(engine, root, a)) == n
    assert armed(engine) == []  # it came due as a no-op and was not re-armed
