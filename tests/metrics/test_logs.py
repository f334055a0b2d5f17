"""Structured logs (``rattan.logs``): the engine's records carry the run and node ids, the JSON
formatter writes them as fields, and ``--log-format json`` / ``RATTAN_LOG_FORMAT`` switch the
commands to it."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import cli, logs
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree

pytestmark = pytest.mark.timeout(60)


class HookRaises(rattan.Service):
    __need_run_hook__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def node_finish(self, data: Any, parent_data: Any) -> bool:
        raise RuntimeError("hook broke")


@pytest.fixture(autouse=True)
def no_handler() -> Iterator[None]:
    """Leave the root logger as it was (the commands install a handler on it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_engine_records_carry_run_and_node_ids(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reg = rattan.Registry("logs-tests")
    type(
        "hook_raises_c",
        (rattan.Component,),
        {"name": "hr", "code": "hr", "bound_service": HookRaises},
        registry=reg,
    )
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="hr"), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    with (
        caplog.at_level(logging.ERROR, logger="rattan.engine"),
        rattan.Engine(store=url, components=reg) as engine,
    ):
        engine.run_pipeline(tree)
        assert engine.wait_pipeline(tree["id"], 15)["finished"]
        engine.wait_idle(5)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("hook node_finish")]
    line = json.loads(logs.JsonFormatter().format(record))
    assert (line["level"], line["logger"]) == ("ERROR", "rattan.engine")
    assert (line["root_pipeline_id"], line["node_id"]) == (tree["id"], act.id)
    assert "RuntimeError: hook broke" in line["message"]
    assert line["time"].endswith("+00:00")


def test_the_formatter_keeps_extras_and_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.WARNING, __file__, 1, "at %s", ("n1",), sys.exc_info(),
            extra={**logs.node_extra("p1", "n1", loop=2), "payload": {"a": object}},
        )  # fmt: skip
    line = json.loads(logs.JsonFormatter().format(record))
    assert {k: line[k] for k in ("message", "root_pipeline_id", "node_id", "loop")} == {
        "message": "at n1", "root_pipeline_id": "p1", "node_id": "n1", "loop": 2,
    }  # fmt: skip
    assert line["payload"] == {"a": repr(object)}  # what JSON cannot carry, as its repr
    assert line["exc_info"].splitlines()[-1] == "ValueError: boom"


SERVICE = textwrap.dedent(
    """
    import rattan
    from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree


    class Talk(rattan.Service):
        def execute(self, data, parent_data):
            self.logger.warning("charging")
            return True


    class TalkComponent(rattan.Component):
        name = code = "logs_fixture_talk"
        bound_service = Talk


    def build():
        act = ServiceActivity(component_code="logs_fixture_talk", id="e" + "5" * 32)
        start, end = EmptyStartEvent(), EmptyEndEvent()
        start.extend(act).extend(end)
        return build_tree(start)
    """
)


@pytest.mark.parametrize("how", ["option", "env"])
def test_rattan_run_writes_json_log_lines(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "logs_fixture.py").write_text(SERVICE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["run", "logs_fixture:build", "--dry-run"]
    if how == "option":
        args += ["--log-format", "json"]
    else:
        monkeypatch.setenv(logs.LOG_FORMAT_ENV, "json")
    assert cli.main(args) == cli.EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    (line,) = [x for x in lines if x["message"] == "charging"]
    assert (line["logger"], line["node_id"], line["loop"]) == ("rattan.service", "e" + "5" * 32, 1)


def test_serve_and_worker_take_the_option() -> None:
    from rattan.server.cli import configure

    serve = configure(argparse.ArgumentParser()).parse_args(["--tokens", "t", "--log-format", "json"])
    assert serve.log_format == "json"
    worker = cli._parser().parse_args(
        ["worker", "--store", "x.db", "--dispatcher", "celery://redis://h:6379/0", "--log-format", "json"]
    )
    assert worker.log_format == "json"
    assert (
        cli._parser().parse_args(["run", "t.json"]).log_format is None
    )  # None: $RATTAN_LOG_FORMAT, else text
