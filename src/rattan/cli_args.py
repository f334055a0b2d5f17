"""Arguments several ``rattan`` subcommands share, declared once: ``--components`` and the
``--store``/``--json`` pair of the commands that read or change a store, and which store that is
(``default_store``, ``sqlite_path``)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import Any

COMPONENTS_HELP = "import MODULE (a package: with its submodules) so its components register; repeatable"
STORE_HELP = "the store: a path, sqlite:///PATH or postgresql://... (default: $RATTAN_STORE, else rattan.db)"


def add_components(cmd: Any, help: str = COMPONENTS_HELP) -> None:
    """``--components MODULE``, repeatable, into ``args.components`` (a list)."""
    cmd.add_argument("--components", action="append", default=[], metavar="MODULE", help=help)


def store_options() -> argparse.ArgumentParser:
    """A parent parser with ``--store URL`` and ``--json``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None, metavar="URL", help=STORE_HELP)
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    return common


def amount(unit: str) -> Callable[[str], float]:
    """An argparse type: a finite number of ``unit``, 0 or more (a negative age would reach into
    the future, a negative wait means nothing)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of {unit}: {text!r}") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"must be a number of {unit}, 0 or more (got {text})")
        return value

    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {text})")
    return value


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite store URL or path; None for other stores and ``:memory:``."""
    if "://" in url:
        scheme, rest = url.split("://", 1)
        if scheme.lower() != "sqlite":
            return None
        url = rest[1:] if rest.startswith("/") else rest
    return None if url in ("", ":memory:") else url


def default_store(given: str | None) -> str:
    """The store a command works on: ``given`` (its --store), else $RATTAN_STORE, else rattan.db."""
    return given or os.environ.get("RATTAN_STORE") or "rattan.db"
