"""The pipeline builder: chain flow elements, then ``build_tree`` them into a pipeline tree.

Pure: no I/O, no registry look-ups, no validation.
"""

from rattan.builder.builder import build_tree
from rattan.builder.data import (
    Data,
    DataInput,
    InitializedRewritableNodeOutput,
    NodeOutput,
    Params,
    RewritableNodeOutput,
    Var,
)
from rattan.builder.flow import (
    ConditionalParallelGateway,
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ExecutableEndEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
)
from rattan.builder.tokens import generate_pipeline_token

__all__ = [
    "build_tree",
    "EmptyStartEvent",
    "EmptyEndEvent",
    "ExecutableEndEvent",
    "ServiceActivity",
    "SubProcess",
    "ParallelGateway",
    "ExclusiveGateway",
    "ConditionalParallelGateway",
    "ConvergeGateway",
    "Data",
    "Params",
    "Var",
    "DataInput",
    "NodeOutput",
    "RewritableNodeOutput",
    "InitializedRewritableNodeOutput",
    "generate_pipeline_token",
]
