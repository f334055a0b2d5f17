"""Field-level checks of nodes, input items and the ``data`` declaration (part of the structure check)."""

from __future__ import annotations

from typing import Any

from ._common import CONDITIONAL_TYPES, SERVICE_ACTIVITY, SUBPROCESS, Problems, node_name, short, to_list

INPUT_TYPES = frozenset({"plain", "splice", "lazy"})
_MISSING = object()  # ``dict.get`` default telling a missing key from a None value in one lookup


def _check_flow_list(nid: str, key: str, value: Any, node: dict[str, Any], probs: Problems) -> None:
    if value is None or value == "":
        return
    items = value if isinstance(value, list) else [value]
    if not isinstance(value, (str, list)):
        probs.add(
            nid,
            "structure.field_type",
            f"{key!r} must be a flow id string or a list of them",
            node_name(node),
        )
        return
    for item in items:
        if not isinstance(item, str) or not item:
            probs.add(
                nid,
                "structure.field_type",
                f"{key!r} holds {short(item)}, not a flow id string",
                node_name(node),
            )


def check_node(nid: str, node: dict[str, Any], probs: Problems) -> bool:
    """Field checks of one node; True when it is a subprocess with a nested ``pipeline`` to check.

    The node's name is looked up (``node_name``) only when a problem is reported.
    """
    name = node.get("name")
    if name is not None and not isinstance(name, str):
        probs.add(nid, "structure.field_type", "'name' must be a string or null", node_name(node))
    for key in ("incoming", "outgoing"):
        value = node.get(key, _MISSING)
        if value is _MISSING:
            probs.add(
                nid, "structure.required_key", f"node is missing the required key {key!r}", node_name(node)
            )
        else:
            _check_flow_list(nid, key, value, node, probs)
    ntype = node["type"]
    if ntype == SERVICE_ACTIVITY:
        _check_service_activity(nid, node, probs)
    elif ntype == SUBPROCESS:
        if "params" in node and node["params"] is not None:
            _check_input_map(nid, "params", node["params"], node, probs)
        if "pipeline" not in node:
            probs.add(
                nid,
                "structure.required_key",
                "subprocess is missing the required key 'pipeline'",
                node_name(node),
            )
            return False
        return True
    elif ntype in CONDITIONAL_TYPES:
        _check_conditions(nid, node, node_name(node), probs)
    return False


def _check_service_activity(nid: str, node: dict[str, Any], probs: Problems) -> None:
    comp = node.get("component")
    if not isinstance(comp, dict):
        probs.add(
            nid,
            "activity.component",
            "service activity needs a 'component' dict with a 'code'",
            node_name(node),
        )
    else:
        code = comp.get("code")
        if not isinstance(code, str) or not code:
            probs.add(
                nid,
                "activity.component",
                f"component.code must be a non-empty string, got {short(code)}",
                node_name(node),
            )
        version = comp.get("version")
        if version is not None and not isinstance(version, str):
            probs.add(nid, "activity.component", "component.version must be a string", node_name(node))
        inputs = comp.get("inputs")
        if inputs is not None:
            _check_input_map(nid, "component.inputs", inputs, node, probs)
    for key in ("error_ignorable", "skippable", "retryable"):
        # a missing key reads as False here, which passes, like the ``key in node`` test did
        value = node.get(key, False)
        if not isinstance(value, bool):
            probs.add(
                nid,
                "structure.field_type",
                f"{key!r} must be true or false, got {short(value)}",
                node_name(node),
            )
    for key in ("loop_config", "timeout_config", "events"):
        value = node.get(key)
        if value is not None and not isinstance(value, dict):
            probs.add(nid, "structure.field_type", f"{key!r} must be a dict", node_name(node))
    events = node.get("events")
    if isinstance(events, dict) and events.get("timer_events") is not None:
        timers = events["timer_events"]
        if not isinstance(timers, list) or not all(isinstance(t, dict) for t in timers):
            probs.add(
                nid, "structure.field_type", "'events.timer_events' must be a list of dicts", node_name(node)
            )


def _input_item_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"must be a dict like {{'type': 'plain', 'value': ...}}, got {type(item).__name__}"
    itype = item.get("type")
    if not isinstance(itype, str) or itype not in INPUT_TYPES:
        return f"has unknown type {short(itype)}; use 'plain', 'splice' or 'lazy'"
    if itype == "lazy" and not isinstance(item.get("custom_type"), str):
        return "is lazy but has no string 'custom_type' (the lazy variable code)"
    if item.get("need_render") is not None and not isinstance(item["need_render"], bool):
        return "has a 'need_render' that is not true or false"
    return None


def _check_input_map(nid: str, where: str, inputs: Any, node: dict[str, Any], probs: Problems) -> None:
    if not isinstance(inputs, dict):
        probs.add(nid, "structure.field_type", f"{where!r} must be a dict of input items", node_name(node))
        return
    for key, item in inputs.items():
        if not isinstance(key, str):
            probs.add(nid, "input.key", f"{where} key {short(key)} must be a string", node_name(node))
            continue
        err = _input_item_problem(item)
        if err:
            probs.add(nid, "input.item", f"{where}[{key!r}] {err}", node_name(node))


def _check_conditions(nid: str, node: dict[str, Any], name: str | None, probs: Problems) -> None:
    raw_out = node.get("outgoing")
    outgoing = (
        {f for f in to_list(raw_out) if isinstance(f, str)} if isinstance(raw_out, (str, list)) else set()
    )
    conditions = node.get("conditions")
    if conditions is not None:
        if not isinstance(conditions, dict):
            probs.add(
                nid, "gateway.conditions", "'conditions' must be a dict flow id -> {'evaluate': ...}", name
            )
        else:
            for fid, cond in conditions.items():
                if fid not in outgoing:
                    probs.add(
                        nid,
                        "gateway.condition_flow",
                        f"condition key {short(fid)} is not an outgoing flow of this gateway; "
                        "conditions are keyed by outgoing flow id",
                        name,
                    )
                if not isinstance(cond, dict) or not isinstance(cond.get("evaluate"), str):
                    probs.add(
                        nid,
                        "gateway.conditions",
                        f"condition for flow {short(fid)} must be a dict with a string 'evaluate'",
                        name,
                    )
    default = node.get("default_condition")
    if default is None or default == {}:
        pass
    elif not isinstance(default, dict) or "flow_id" not in default:
        probs.add(
            nid, "gateway.default_condition", "'default_condition' must be {} or {'flow_id': ...}", name
        )
    elif not isinstance(default["flow_id"], str) or default["flow_id"] not in outgoing:
        probs.add(
            nid,
            "gateway.default_condition",
            f"default_condition.flow_id {short(default['flow_id'])} is not an outgoing flow of this gateway",
            name,
        )
    if node.get("extra_info") is not None and not isinstance(node["extra_info"], dict):
        probs.add(nid, "structure.field_type", "'extra_info' must be a dict", name)


def check_data(data: Any, label: str, probs: Problems) -> None:
    if not isinstance(data, dict):
        probs.add(label, "data.type", f"'data' must be a dict, got {type(data).__name__}")
        return
    inputs = data.get("inputs")
    if inputs is not None:
        if not isinstance(inputs, dict):
            probs.add(label, "data.type", "'data.inputs' must be a dict context key -> item")
        else:
            for key, item in inputs.items():
                err = "key must be a string" if not isinstance(key, str) else _data_item_problem(item)
                if err:
                    probs.add(label, "data.input", f"data.inputs[{short(key)}] {err}")
    for key in ("outputs", "pre_render_keys"):
        value = data.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(k, str) for k in value)):
            probs.add(label, "data.type", f"'data.{key}' must be a list of context key strings")


def _data_item_problem(item: Any) -> str | None:
    err = _input_item_problem(item)
    if err or "source_act" not in item:
        return err
    src = item["source_act"]
    if isinstance(src, str):
        if not isinstance(item.get("source_key"), str):
            return "declares a node output (source_act) but has no string 'source_key'"
    elif isinstance(src, list):
        for ref in src:
            if (
                not isinstance(ref, dict)
                or not isinstance(ref.get("source_act"), str)
                or not isinstance(ref.get("source_key"), str)
            ):
                return "source_act list entries must be {'source_act': str, 'source_key': str}"
    else:
        return "source_act must be a node id string or a list of {'source_act', 'source_key'} dicts"
    if item.get("need_initialization") is not None and not isinstance(item["need_initialization"], bool):
        return "need_initialization must be true or false"
    return None
