"""The three components the benchmark shapes use, written against rattan's bamboo-compatible API.

Copied from the project's benchmark definitions (its ``components.py``, kept outside this
repository) so that the repository is self-contained; only the style was adapted to this
repository's ruff rules (the log messages are built eagerly with f-strings instead of ``%``: same
text, same cost).

They mirror the components bamboo-pipeline was measured with (see shapes.py), including bamboo's benchmark
component's logging calls, so that a comparison measures the engines and not the components.
Importing this module defines (and so registers) the components.
"""

import logging
import pprint

import rattan

logger = logging.getLogger("rattan.bench")


class NoopService(rattan.Service):
    __need_schedule__ = False

    def execute(self, data, parent_data):
        return True

    def outputs_format(self):
        return []


class NoopComponent(rattan.Component):
    name = "bench noop"
    code = "bench_noop"
    bound_service = NoopService


class DebugService(rattan.Service):
    """Copies its inputs to its outputs, then one schedule() call at interval 0 finishes it."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0)

    def execute(self, data, parent_data):
        logger.info(f"debug_node execute data {pprint.pformat(data.inputs)} ")
        logger.info(f"debug_node execute parent data {pprint.pformat(parent_data.inputs)} ")
        for key, val in data.inputs.items():
            data.set_outputs(key, val)
        logger.info(f"debug_node output data {pprint.pformat(data.outputs)} ")
        return True

    def schedule(self, data, parent_data, callback_data=None):
        logger.info(f"debug_node schedule data {pprint.pformat(data.inputs)} ")
        logger.info(f"debug_node schedule parent data {pprint.pformat(parent_data.inputs)} ")
        logger.info(f"debug_node schedule output data {pprint.pformat(data.outputs)} ")
        self.finish_schedule()
        return True

    def outputs_format(self):
        return []


class DebugComponent(rattan.Component):
    name = "debug"
    code = "debug_node"
    bound_service = DebugService


class PollService(rattan.Service):
    """Polls every second; finishes on its 3rd schedule() call."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(1)

    def execute(self, data, parent_data):
        data.set_outputs("count", 0)
        return True

    def schedule(self, data, parent_data, callback_data=None):
        count = (data.get_one_of_outputs("count") or 0) + 1
        data.set_outputs("count", count)
        if count >= 3:
            self.finish_schedule()
        return True

    def outputs_format(self):
        return []


class PollComponent(rattan.Component):
    name = "bench poll"
    code = "bench_poll"
    bound_service = PollService
