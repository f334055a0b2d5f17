"""``DataObject``: the ``data`` and ``parent_data`` a service receives.

The engine builds two per node step, so this is a thin wrapper: the constructor copies nothing when
given ``FancyDict`` instances and makes one shallow copy otherwise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from rattan.errors import BadInputError
from rattan.fancy import FancyDict

__all__ = ["DataObject", "FancyDict"]


def _fancy(value: Mapping[str, Any] | None, what: str) -> FancyDict:
    if type(value) is FancyDict:
        return value
    if value is None:
        return FancyDict()
    if not isinstance(value, Mapping):
        raise BadInputError(f"DataObject {what} must be a dict, got {type(value).__name__}")
    return FancyDict(value)


class DataObject:
    """Inputs and outputs of one node step.

    Args:
        inputs: the inputs; a ``FancyDict`` is used as is, any other mapping is copied shallowly.
        outputs: the outputs (same rule); ``None`` means empty.

    Attributes:
        inputs: attribute-access dict of inputs.
        outputs: attribute-access dict of outputs.
    """

    __slots__ = ("inputs", "outputs")

    def __init__(self, inputs: Mapping[str, Any] | None, outputs: Mapping[str, Any] | None = None) -> None:
        self.inputs: FancyDict = _fancy(inputs, "inputs")
        self.outputs: FancyDict = _fancy(outputs, "outputs")

    def get_inputs(self) -> FancyDict:
        """Return the inputs dict itself (not a copy)."""
        return self.inputs

    def get_outputs(self) -> FancyDict:
        """Return the outputs dict itself (not a copy)."""
        return self.outputs

    def get_one_of_inputs(self, key: str, default: Any = None) -> Any:
        """Return ``inputs[key]``, or ``default`` when absent."""
        return self.inputs.get(key, default)

    def get_one_of_outputs(self, key: str, default: Any = None) -> Any:
        """Return ``outputs[key]``, or ``default`` when absent."""
        return self.outputs.get(key, default)

    def set_outputs(self, key: str, value: Any) -> bool:
        """Set one output. Returns ``True`` (as in bamboo)."""
        self.outputs[key] = value
        return True

    def update_outputs(self, dic: Mapping[str, Any]) -> bool:
        """Merge ``dic`` into the outputs. Returns ``True``."""
        self.outputs.update(dic)
        return True

    def reset_outputs(self, outputs: Mapping[str, Any]) -> bool:
        """Replace all outputs with ``outputs``. Returns ``True``."""
        self.outputs = FancyDict(outputs)
        return True

    def inputs_copy(self) -> FancyDict:
        """Return a deep copy of the inputs."""
        return copy.deepcopy(self.inputs)

    def outputs_copy(self) -> FancyDict:
        """Return a deep copy of the outputs."""
        return copy.deepcopy(self.outputs)

    def override_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Replace the inputs dict."""
        self.inputs = _fancy(inputs, "inputs")

    def override_outputs(self, outputs: Mapping[str, Any]) -> None:
        """Replace the outputs dict."""
        self.outputs = _fancy(outputs, "outputs")

    def serializer(self) -> str:
        """Return ``{"inputs": ..., "outputs": ...}`` as JSON text."""
        return json.dumps({"inputs": self.inputs, "outputs": self.outputs})

    def __getstate__(self) -> dict[str, Any]:
        return {"inputs": dict(self.inputs), "outputs": dict(self.outputs)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.inputs = FancyDict(state["inputs"])
        self.outputs = FancyDict(state["outputs"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataObject):
            return NotImplemented
        return self.inputs == other.inputs and self.outputs == other.outputs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DataObject(inputs={dict(self.inputs)!r}, outputs={dict(self.outputs)!r})"
