"""Engine settings: one frozen dataclass, passed to the Engine. Never module globals.

Field names are bamboo's Django setting names in lower case.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# bamboo aliases accepted by ``Settings.from_mapping``.
_ALIASES = {"bamboo_django_eri_node_rerun_limit": "node_rerun_limit"}

# bamboo sandbox knobs: accepted and ignored (rattan's evaluator is an allow-list).
_IGNORED = {
    "mako_sandbox_shield_words",
    "mako_sandbox_import_modules",
    "mako_template_name_whitelist_mode",
    "mako_template_name_extra_whitelist",
}


# Smaller pages than SQLite's 4096 make each commit write fewer WAL bytes: a node's commit touches
# about ten B-tree pages (states, their indexes, the token, the event row...), each mostly unchanged.
# Measured on a 1,000-activity chain (one commit per node): 8-15% more nodes/s at 2048 than at 4096,
# no loss on the batched shapes; 1024 gained no more. Existing stores keep their page size.
DEFAULT_PAGE_SIZE = 2048


@dataclass(frozen=True)
class Settings:
    """Behaviour switches of one engine. See docs/engine.md for each field."""

    # expressions and gateways
    pipeline_exclusive_gateway_expr_func: Callable[..., bool] | None = None  # None: boolrule
    pipeline_exclusive_gateway_strategy: int = 1  # 1 = ONLY, 2 = FIRST
    enable_render_obj_by_mako_string: bool = False
    template_strict: bool = False
    expression_names: Mapping[str, Any] = field(default_factory=dict)
    # execution
    node_rerun_limit: int = 100
    rerun_index_offset: int = 0
    loop_outputs_inner_key: str = "outputs"
    enable_example_components: bool = True
    validate_io_schemas: bool = False
    # signals, rollback, contribs
    enable_pipeline_event_signals: bool = False
    pipeline_enable_rollback: bool = False
    rollback_queue: str = "rollback"
    pipeline_enable_auto_execute_when_roll_backed: bool = True
    pipeline_node_timeout_handler: Mapping[str, Any] = field(default_factory=dict)
    # runtime: worker threads of this process, and the leases of work (many processes on one store)
    workers: int = 4
    lease_seconds: float = 8.0  # an engine that has not renewed its lease this long is gone
    sweep_seconds: float = 1.0  # how often an engine renews its lease and looks for orphaned work
    # across processes (Celery): a message whose work this live engine owns and nobody touched in
    # two looks this far apart is sent again (a broker may lose one; engine/handoff.py)
    resend_seconds: float = 5.0
    sqlite_synchronous: str = "FULL"  # FULL survives power loss; NORMAL survives a process crash
    sqlite_page_size: int = DEFAULT_PAGE_SIZE  # bytes per page of a NEW store file (docs/engine.md)
    max_tree_nodes: int = 100_000  # larger trees are refused by validation
    max_subprocess_depth: int = 50  # deeper subprocess nesting is refused by validation (docs/engine.md)
    # the largest value stored, in encoded bytes: one output key's value (larger fails the node)
    # and one callback's data (larger is refused); docs/components.md
    max_output_bytes: int = 16 * 2**20
    max_callback_bytes: int = 16 * 2**20
    # retention: archive and delete runs finished longer ago than this (None: keep forever)
    retention_seconds: float | None = None
    retention_archive_dir: str | None = None  # JSON-lines files go here; None: delete only
    retention_interval: float = 3600.0  # seconds between retention passes

    def replace(self, **changes: Any) -> Settings:
        check_fields(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from bamboo's upper-case names (e.g. a Django settings dict)."""
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            name = _ALIASES.get(key.lower(), key.lower())
            if name in _IGNORED:
                continue
            if name in known:
                kwargs[name] = value
        return cls(**kwargs)


def check_fields(changes: Mapping[str, Any]) -> None:
    """Raise TypeError naming the closest valid field for every unknown keyword."""
    known = [f.name for f in dataclasses.fields(Settings)]
    for key in changes:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unknown engine setting {key!r}{hint}")
