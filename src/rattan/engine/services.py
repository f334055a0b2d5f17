"""User code of components: finding a node's Service class, making the instance a step runs,
judging what it returned, and calling its hooks and ``cancel()`` after a commit."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from rattan.components import BUILTIN_REGISTRY, DataObject, Registry, Service
from rattan.components.service import SERVICE_LOGGER_NAME, ServiceLoggerAdapter
from rattan.engine.jobs import Prepared
from rattan.errors import ComponentNotExistException, NotFoundError
from rattan.model.codec import dumps
from rattan.model.records import StateRecord
from rattan.runtime.interface import CallbackQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.step import Step

log = logging.getLogger("rattan.engine")
_SERVICE_LOGGER = logging.getLogger(SERVICE_LOGGER_NAME)


class NodeLogger(ServiceLoggerAdapter):
    """``self.logger`` of a service: logs as usual and keeps the lines for ``get_plain_log_for_node``."""

    def __init__(self, node_id: str, version: str, loop: int) -> None:
        super().__init__(_SERVICE_LOGGER, {"node_id": node_id, "loop": loop, "version": version})
        self.lines: list[str] = []

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.INFO:
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = f"{msg} {args}"
            self.lines.append(f"[{logging.getLevelName(level)}] {text}")
        super().log(level, msg, *args, **kwargs)


class Services:
    def __init__(self, core: EngineCore, registry: Registry) -> None:
        self.core = core
        self.registry = registry

    # -- finding and making services -------------------------------------------------------------
    def sink_types(self) -> frozenset[str]:
        return self.registry.sink_types()

    def service_class(self, code: str, version: str) -> type[Service]:
        try:
            return self.registry.get_service_class(code, version)
        except ComponentNotExistException:
            if self.core.settings.enable_example_components:
                return BUILTIN_REGISTRY.get_service_class(code, version)
            raise

    def has_component(self, code: str, version: str) -> bool:
        try:
            self.service_class(code, version)
        except ComponentNotExistException:
            return False
        return True

    def wants_hooks(self, node: Any) -> bool:
        """True for a service activity whose service sets ``__need_run_hook__``."""
        code = getattr(node, "component_code", None)
        if code is None:
            return False
        try:
            service = self.service_class(code, node.component_version)
        except ComponentNotExistException:
            return False
        return bool(getattr(service, "__need_run_hook__", False))

    def is_idempotent(self, node: Any) -> bool:
        if not self.has_component(node.component_code, node.component_version):
            return False
        service = self.service_class(node.component_code, node.component_version)
        return bool(getattr(service, "__idempotent__", False))

    def make_service(self, prep: Prepared) -> Service:
        service = self.service_class(prep.code, prep.component_version)(name=prep.name)
        service.setup_runtime_attrs(
            id=prep.node_id,
            version=prep.version,
            top_pipeline_id=prep.top_pipeline_id,
            root_pipeline_id=prep.root_id,
            loop=prep.loop,
            inner_loop=prep.inner_loop,
            logger=NodeLogger(prep.node_id, prep.version, prep.loop),
        )
        return service

    @staticmethod
    def data_objects(
        inputs: dict[str, Any], outputs: dict[str, Any], root_data: Any
    ) -> tuple[DataObject, DataObject]:
        return DataObject(dict(inputs), outputs), DataObject(dict(root_data or {}), {})

    def lazy_variable(self, code: str) -> Any:
        return self.registry.get_lazy_variable(code)

    def run_end_event(
        self, key: str, node_id: str, in_subprocess: bool, root_id: str, pipeline_id: str
    ) -> str | None:
        """Run an executable end event; return ex_data text on failure."""
        try:
            cls = self.registry.get_end_event(key)
        except NotFoundError:
            return f"executable end event type '{key}' is not registered"
        try:
            cls(id=node_id, name=None, data=None).execute(in_subprocess, root_id, pipeline_id)
        except Exception:
            return traceback.format_exc()
        return None

    # -- during a user step ----------------------------------------------------------------------
    def hook(self, service: Service, name: str, data: DataObject, parent: DataObject, **kw: Any) -> None:
        if not service.need_run_hook():
            return
        saved = (dict(data.inputs), dict(data.outputs))
        try:
            if not service.call_hook(name, data, parent, kw.get("callback_data")):
                # a main-path hook's changes are kept only when it returns truthy
                data.reset_outputs(saved[1])
                data.override_inputs(saved[0])
        except Exception:
            node_id = getattr(service, "id", "?")
            log.error(
                "hook %s of node %s raised:\n%s", name, node_id, traceback.format_exc(),
                extra={"root_pipeline_id": getattr(service, "root_pipeline_id", None), "node_id": node_id},
            )  # fmt: skip

    def judge(self, service: Service, data: DataObject, value: Any) -> tuple[Any, bool]:
        """A user step's return value as (value, success): ``None`` means success, anything else
        by truthiness; outputs that break ``outputs_format`` fail when validation is on."""
        if value is None:
            value = True
        if value and (problem := self.output_problems(service, data.outputs)) is not None:
            data.outputs["ex_data"] = problem
            return False, False
        return value, bool(value)

    def output_problems(self, service: Service, outputs: dict[str, Any]) -> str | None:
        """With ``validate_io_schemas`` on: the ex_data text when outputs break ``outputs_format``."""
        if not self.core.settings.validate_io_schemas:
            return None
        problems: list[str] = []
        for item in service.outputs_format():
            if item.key in outputs:
                problems += item.validate(outputs[item.key])
        return "outputs do not match outputs_format: " + "; ".join(problems) if problems else None

    # -- after a commit --------------------------------------------------------------------------
    def service_for(
        self, node_id: str, version: str | None = None
    ) -> tuple[Service, DataObject, DataObject, StateRecord | None] | None:
        """A fresh service of a stored service activity with DataObjects of its execution data,
        for calls made after a commit (hooks, ``cancel``). None for other nodes."""
        core = self.core
        root = core.store.read(lambda tx: tx.roots_of([node_id])).get(node_id)
        if root is None:
            return None
        info = core.plans.plan(root).info(node_id)
        node: Any = info.node
        if node.kind != "ServiceActivity" or not self.has_component(
            node.component_code, node.component_version
        ):
            return None
        found, data, root_data = core.store.read(
            lambda tx: (tx.states([node_id]), tx.node_data(node_id), core.plans.root_data(tx, root))
        )
        st = found[0] if found else None
        inputs = data.inputs or {}
        prep = Prepared.of(
            0, node, version or (st.version if st else ""), st.loop if st else 1, st.inner_loop if st else 1,
            root, info.pipeline_id, inputs, root_data,
        )  # fmt: skip
        d, parent = self.data_objects(prep.inputs, dict(data.outputs or {}), root_data)
        return self.make_service(prep), d, parent, st

    def run_hook(self, node_id: str, hook: str, save: bool, callback_id: int | None) -> None:
        """Call a node hook after the change it reports is committed. ``save``: keep the
        hook's changes to data when it returns truthy and the node's version has not moved on."""
        try:
            made = self.service_for(node_id)
            if made is None or not made[0].need_run_hook():
                return
            service, d, parent, st = made
            if st is None:
                return
            cb = None
            if callback_id is not None:
                found = self.core.store.read(lambda tx: tx.waits(CallbackQuery(id=callback_id)))
                cb = found[0] if found else None
            try:
                keep = service.call_hook(hook, d, parent, cb)
            except Exception:
                log.error(
                    "hook %s of node %s raised:\n%s", hook, node_id, traceback.format_exc(),
                    extra={"root_pipeline_id": st.root_id, "node_id": node_id},
                )  # fmt: skip
                return
            if save and keep:
                version, inputs, outputs = st.version, dict(d.inputs), dict(d.outputs)
                self.core.unit(lambda step: save_hook_data(step, node_id, version, inputs, outputs))
        except Exception:
            log.exception("could not run hook %s of node %s", hook, node_id, extra={"node_id": node_id})

    def cancel_service(self, node_id: str, version: str) -> None:
        """Call the Service's optional ``cancel(data, parent_data)`` so it can stop its external job."""
        try:
            made = self.service_for(node_id, version)
            if made is not None:
                made[0].cancel(made[1], made[2])
        except Exception:
            log.exception(
                "cancel() of node %s raised", node_id, extra={"node_id": node_id, "version": version}
            )


def save_hook_data(
    step: Step, node_id: str, version: str, inputs: dict[str, Any], outputs: dict[str, Any]
) -> None:
    """Keep a main-path hook's data changes, unless the node has moved on to another pass."""
    st = step.state(node_id)
    if st is not None and st.version == version:
        step.tx.put_node_data(node_id, inputs=dumps(inputs), outputs=dumps(outputs))
