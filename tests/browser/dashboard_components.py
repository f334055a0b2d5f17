"""Components of the dashboard's browser tests and screenshots, registered in the process's
default registry when imported: ``rattan serve --component-module dashboard_components`` (with this
folder on PYTHONPATH) runs them. The test process itself never imports this module."""

from __future__ import annotations

import time
from typing import Any

import rattan


class Sleep(rattan.Service):
    """Sleeps ``seconds`` (default 0.2), logs a line and outputs what it was given."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        seconds = float(data.get_one_of_inputs("seconds", 0.2))
        self.logger.info("sleeping %.1f s", seconds)
        time.sleep(seconds)
        data.outputs.slept = seconds
        return True


class FailUnlessOk(rattan.Service):
    """Fails until its ``ok`` input is true (retry it with new inputs)."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        self.logger.info("ok is %s", data.get_one_of_inputs("ok", False))
        if not data.get_one_of_inputs("ok", False):
            data.outputs.ex_data = "ok is false: retry with ok set to true"
            return False
        data.outputs.done = True
        return True


class WaitCallback(rattan.Service):
    """Waits for one callback and outputs its data as ``received``."""

    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        self.logger.info("waiting for a callback")
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.received = callback_data
        self.finish_schedule()
        return True


for _code, _service, _name in (
    ("dash_sleep", Sleep, "Sleep"),
    ("dash_fail", FailUnlessOk, "Fail unless ok"),
    ("dash_wait", WaitCallback, "Wait for callback"),
):
    type(f"{_code}_component", (rattan.Component,), {"name": _name, "code": _code, "bound_service": _service})
