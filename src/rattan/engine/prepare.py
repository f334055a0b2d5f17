"""``run_pipeline``: validate, store everything in one transaction, dispatch the first token."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rattan.components import BUILTIN_REGISTRY
from rattan.engine import policies
from rattan.engine.checks import json_input
from rattan.engine.plan import RunPlan, build_plan
from rattan.engine.step import Step
from rattan.errors import (
    BadInputError,
    IdInUseError,
    InvalidOperationError,
    Problem,
    StartPositionInvalidException,
    TreeInvalidException,
)
from rattan.expr.suggest import did_you_mean
from rattan.model import states
from rattan.model.codec import JSONError, dumps
from rattan.model.messages import Advance
from rattan.model.records import ContextRow, NewRun, TokenRecord
from rattan.model.states import TokenStatus
from rattan.spec import parse_pipeline
from rattan.spec.model import SubProcessNode
from rattan.validator import (
    check_component_codes,
    component_keys,
    validate_and_process_pipeline,
    validate_pipeline_start_node,
)
from rattan.validator.outputs import RULE as NODE_OUTPUT_RULE
from rattan.validator.outputs import SYSTEM_OUTPUTS

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore

KNOWN_OPTIONS = {"cycle_tolerate", "start_node_id", "priority", "queue", "check_components"}

log = logging.getLogger("rattan.engine")


def _check_mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInputError(f"{name} must be a dict, not {type(value).__name__}")
    json_input(value, name)  # refused here, named, before anything is validated or stored
    return value


def registered_component_keys(core: EngineCore) -> frozenset[tuple[str, str]]:
    """The ``(code, version)`` pairs this engine can run: its registry's, and the example
    components' when ``enable_example_components`` is on (the lookup order of its services)."""
    keys = component_keys(core.services.registry)
    if core.settings.enable_example_components:
        keys |= component_keys(BUILTIN_REGISTRY)
    return keys


def component_problems(core: EngineCore, tree: Any) -> list[Problem]:
    """One problem per service activity of ``tree`` whose component this engine cannot run, with
    a "did you mean" hint (or the registered versions of a known code): what ``check_components``
    refuses. ``tree`` need not be validated; it is not modified."""
    return check_component_codes(tree, registered_component_keys(core))


def unset_exports(plan: RunPlan) -> list[Problem]:
    """Node outputs read from a subprocess under a key it exports but can never set.

    Everything that can put a key into a subprocess's context is known once the run is prepared:
    its ``data.inputs``, its nodes' hoisted lazy inputs, ``subprocess_context`` and the params of the
    subprocess node. An exported key none of them names would be exported as its own text.
    """
    problems: list[Problem] = []
    for spec in plan.pipelines.values():
        for key, item in spec.data.inputs.items():
            for src in item.sources:
                node = spec.nodes.get(src.source_act)
                if not isinstance(node, SubProcessNode) or src.source_key in SYSTEM_OUTPUTS:
                    continue
                child = node.pipeline
                settable = {*plan.initial_context[child.id], *child.data.inputs, *node.params}
                if src.source_key in settable:
                    continue
                problems.append(
                    Problem(
                        spec.id,
                        NODE_OUTPUT_RULE,
                        f"data.inputs[{key!r}] reads output {src.source_key!r} of subprocess {node.id},"
                        f" which exports it but never sets it{did_you_mean(src.source_key, settable)}:"
                        " no data.inputs entry of the subprocess, param of the subprocess node or"
                        " subprocess_context key is named so",
                    )
                )
    return problems


def run_pipeline(
    core: EngineCore,
    pipeline: Any,
    root_pipeline_data: Any = None,
    root_pipeline_context: Any = None,
    subprocess_context: Any = None,
    **options: Any,
) -> None:
    root_data = _check_mapping("root_pipeline_data", root_pipeline_data)
    root_ctx = _check_mapping("root_pipeline_context", root_pipeline_context)
    sub_ctx = _check_mapping("subprocess_context", subprocess_context)
    cycle_tolerate = bool(options.get("cycle_tolerate", False))
    # validation normalises the caller's dict in place (a quirk hosts rely on)
    validate_and_process_pipeline(
        pipeline,
        cycle_tolerate=cycle_tolerate,
        sink_types=core.services.sink_types(),
        max_nodes=core.settings.max_tree_nodes,
        max_depth=core.settings.max_subprocess_depth,
    )
    start_node_id = options.get("start_node_id") or pipeline["start_event"]["id"]
    if start_node_id != pipeline["start_event"]["id"]:
        validate_pipeline_start_node(pipeline, start_node_id)
    spec = parse_pipeline(pipeline)
    if start_node_id not in spec.nodes:
        raise StartPositionInvalidException(f"start node {start_node_id} is not a node of the root pipeline")
    plan = build_plan(spec, root_ctx, sub_ctx)
    policies.validate_plan(plan)
    # an exported key nothing can set is exported as its own text, as in bamboo (a quirk kept on
    # purpose): said in the log, not refused
    for problem in unset_exports(plan):
        log.warning("pipeline %s: %s", spec.id, problem, extra={"root_pipeline_id": spec.id})
    if options.get("check_components"):
        missing = component_problems(core, pipeline)
        if missing:
            raise TreeInvalidException("components not registered; register them before running", missing)
    stored_options = {k: v for k, v in options.items() if k in KNOWN_OPTIONS}
    try:
        stored_tree = dumps(pipeline)  # serialised once: a snapshot of the validated tree
    except JSONError as exc:  # e.g. an input value nested deeper than the encoder goes
        raise BadInputError(f"the pipeline tree cannot be stored as JSON: {exc}") from None
    node_ids = [spec.id, *plan.nodes]

    event_data = {
        "pipeline": pipeline,
        "root_pipeline_data": root_data,
        "root_pipeline_context": root_ctx,
        "subprocess_context": sub_ctx,
        **stored_options,
    }

    context = [
        ContextRow(pid, key, t, v, c)
        for pid, ctx in plan.initial_context.items()
        for key, (t, v, c) in ctx.items()
    ]

    def body(step: Step) -> int:
        token = TokenRecord(
            0, spec.id, None, start_node_id, None, [spec.id], TokenStatus.READY, owner=core.owner_id
        )
        new = NewRun(
            spec.id,
            stored_tree,
            root_data,
            stored_options,
            step.now,
            node_ids,
            list(plan.pipelines),
            context,
            step.new_state(spec.id, spec.id, "", states.RUNNING),
            token,
        )
        pid = step.tx.create_run(new)  # a used id: IdInUseError, here or at the commit
        # the id is this run's now: its plan is cached before the first token is dispatched
        # (after the commit), and dropped again below if the commit fails
        core.plans.remember(spec.id, plan, root_data)
        stored.append(spec.id)
        step.fx.sends.append(Advance(pid))
        # the log keeps the tree's id, not a third copy of the tree (it is stored with the run)
        logged = {**event_data, "pipeline": {"id": spec.id}}
        step.event("pre_prepare_run_pipeline", _log=logged, **event_data)
        step.event("post_prepare_run_pipeline", _log=logged, **event_data)
        return pid

    stored: list[str] = []
    try:
        core.unit(body)
    except Exception as exc:
        if stored:
            core.plans.forget(spec.id)
        if isinstance(exc, IdInUseError):  # the caller's mistake, not a race to retry
            raise InvalidOperationError(str(exc)) from None
        raise
