"""The scripts of examples/ imported as modules, so the kit tests exercise the components users
read about. Each is imported once under a stable name (``rattan_example_NN``), which is also the
prefix of ``unittest.mock`` targets inside it (``rattan_example_05.call``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(filename: str) -> ModuleType:
    """Import ``examples/<filename>`` (its ``main()`` does not run) and return the module."""
    name = "rattan_example_" + filename[:2]
    module = sys.modules.get(name)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / filename)
    assert spec is not None and spec.loader is not None, filename
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
