"""``rattan worker``'s refusals: each says what is wrong before any worker starts (exit 3 for a store,
module or broker that cannot be used, 64 for a bad command line)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from rattan.cli import EXIT_INPUT_ERROR, EXIT_USAGE, main

pytestmark = [pytest.mark.timeout(60)]
pytest.importorskip("celery")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(*args: str) -> list[str]:
    return ["worker", *args]


def test_the_help_names_the_worker_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "worker" in capsys.readouterr().out


def test_a_dispatcher_that_is_not_a_celery_url_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_worker("--store", f"sqlite:///{tmp_path / 'x.db'}", "--dispatcher", "threads"))
    assert code == EXIT_USAGE
    assert "celery://" in capsys.readouterr().err


def test_a_negative_local_backlog_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    code = main(
        _worker(
            "--store", f"sqlite:///{tmp_path / 'x.db'}", "--dispatcher", f"celery://redis://127.0.0.1:{port}/0",
            "--local-backlog", "-1",
        )
    )  # fmt: skip
    assert code == EXIT_USAGE
    assert "--local-backlog" in capsys.readouterr().err


def test_a_bad_store_url_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    code = main(_worker("--store", "nosuch://db", "--dispatcher", f"celery://redis://127.0.0.1:{port}/0"))
    assert code == EXIT_INPUT_ERROR
    assert "nosuch://db" in capsys.readouterr().err


def test_an_unknown_component_module_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    code = main(
        _worker(
            "--store", f"sqlite:///{tmp_path / 'x.db'}", "--dispatcher", f"celery://redis://127.0.0.1:{port}/0",
            "--components", "no_such_rattan_components_module",
        )
    )  # fmt: skip
    assert code == EXIT_INPUT_ERROR
    assert "no_such_rattan_components_module" in capsys.readouterr().err


def test_an_unreachable_broker_is_named_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    code = main(
        _worker(
            "--store",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--dispatcher",
            f"celery://redis://:s3cret@127.0.0.1:{port}/0",
        )
    )
    err = capsys.readouterr().err
    assert code == EXIT_INPUT_ERROR
    assert f"127.0.0.1:{port}" in err and "unreachable" in err
    assert "s3cret" not in err
