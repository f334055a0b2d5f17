"""bamboo-engine's exception names (``bamboo_engine.exceptions``), mapped onto rattan's tree."""

from __future__ import annotations

from rattan.errors import (
    ComponentNotExistException,
    ConnectionValidateError,
    ConvergeMatchError,
    InvalidOperationError,
    IsolateNodeError,
    NotFoundError,
    RattanError,
    RollBackException,
    StartPositionInvalidException,
    StateVersionNotMatchError,
    StreamValidateError,
    TreeInvalidException,
)
from rattan.errors import EngineValueError as ValueError

EngineException = RattanError

__all__ = [
    "ComponentNotExistException",
    "ConnectionValidateError",
    "ConvergeMatchError",
    "EngineException",
    "InvalidOperationError",
    "IsolateNodeError",
    "NotFoundError",
    "RollBackException",
    "StartPositionInvalidException",
    "StateVersionNotMatchError",
    "StreamValidateError",
    "TreeInvalidException",
    "ValueError",
]
