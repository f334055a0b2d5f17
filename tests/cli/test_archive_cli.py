"""``rattan archive``: it says what it will delete, deletes without a copy only when told, refuses
nonsense ages, and ``--dry-run`` changes nothing."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import rattan
from rattan import cli
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.testing import FakeClock
from waits import wait_state

pytestmark = pytest.mark.timeout(60)

DAY = 86400.0
CUTOFF = r"\(before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)"


def _run_one(engine: rattan.Engine) -> str:
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="example_component"), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    engine.run_pipeline(tree)
    root = str(tree["id"])
    wait_state(engine, root, "FINISHED")
    return root


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[str], str]:
    """A store with two runs finished ten days ago and one finished now: (db, old ids, new id)."""
    db = tmp_path / "runs.db"
    with rattan.Engine(store=str(db), clock=FakeClock(start=time.time() - 10 * DAY)) as engine:
        old = [_run_one(engine), _run_one(engine)]
    with rattan.Engine(store=str(db)) as engine:
        new = _run_one(engine)
    return db, old, new


def _present(db: Path, ids: list[str]) -> list[str]:
    with rattan.Engine(store=str(db), start=False) as engine:
        return [i for i in ids if engine.get_state_or_none(i) is not None]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--older-than", "-1", "--out", "a.jsonl"],
            "rattan archive: error: argument --older-than: must be a number of days, 0 or more (got -1)",
        ),
        (
            ["--older-than", "nan", "--no-export"],
            "rattan archive: error: argument --older-than: must be a number of days, 0 or more (got nan)",
        ),
        (
            ["--older-than", "soon", "--no-export"],
            "rattan archive: error: argument --older-than: not a number of days: 'soon'",
        ),
        (
            ["--older-than", "5", "--out", "a.jsonl", "--no-export"],
            "rattan archive: error: argument --no-export: not allowed with argument --out",
        ),
        (
            ["--older-than", "5", "--no-export", "--batch", "0"],
            "rattan archive: error: argument --batch: must be 1 or more (got 0)",
        ),
        (
            ["--older-than", "5"],
            "rattan archive: give --out FILE to export the runs before they are deleted, "
            "or --no-export to delete them without a copy",
        ),
        (
            ["--older-than", "5", "--keep", "--no-export"],
            "rattan archive: --keep exports without deleting: it needs --out FILE",
        ),
    ],
)
def test_archive_refuses_a_bad_command_line_and_touches_nothing(
    store: tuple[Path, list[str], str],
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db, old, new = store
    monkeypatch.chdir(db.parent)
    before = _files(db.parent)
    assert cli.main(["archive", "--db", str(db), *args]) == cli.EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == message
    assert _files(db.parent) == before
    assert _present(db, [*old, new]) == [*old, new]


def test_dry_run_says_how_many_and_changes_nothing(
    store: tuple[Path, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, old, new = store
    out = db.parent / "a.jsonl"
    assert cli.main(["archive", "--db", str(db), "--older-than", "5", "--out", str(out), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert re.fullmatch(
        rf"dry run: 2 pipeline\(s\) finished or revoked more than 5 day\(s\) ago {CUTOFF} in "
        rf"{re.escape(str(db))}; nothing was exported or deleted\n",
        captured.out,
    ), captured.out
    assert captured.err == ""
    assert not out.exists()
    assert _present(db, [*old, new]) == [*old, new]


def test_archive_exports_then_deletes_and_says_so_first(
    store: tuple[Path, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, old, new = store
    out = db.parent / "a.jsonl"
    assert cli.main(["archive", "--db", str(db), "--older-than", "5", "--out", str(out)]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert re.fullmatch(
        rf"archiving 2 pipeline\(s\) finished or revoked more than 5 day\(s\) ago {CUTOFF} from "
        rf"{re.escape(str(db))} to {re.escape(str(out))}, then deleting them\n",
        captured.err,
    ), captured.err
    assert captured.out == f"archived and deleted 2 pipeline(s) -> {out}\n"
    assert sorted(json.loads(line)["root_id"] for line in out.read_text().splitlines()) == sorted(old)
    assert _present(db, [*old, new]) == [new]


def test_no_export_deletes_without_a_copy(
    store: tuple[Path, list[str], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, old, new = store
    monkeypatch.chdir(db.parent)
    assert cli.main(["archive", "--db", str(db), "--older-than", "5", "--no-export"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert re.fullmatch(
        rf"deleting 2 pipeline\(s\) finished or revoked more than 5 day\(s\) ago {CUTOFF} from "
        rf"{re.escape(str(db))}, without export\n",
        captured.err,
    ), captured.err
    assert captured.out == "deleted 2 pipeline(s)\n"
    assert not [p for p in db.parent.iterdir() if p.suffix == ".jsonl"]
    assert _present(db, [*old, new]) == [new]


def test_keep_exports_and_deletes_nothing(
    store: tuple[Path, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, old, new = store
    out = db.parent / "a.jsonl"
    assert cli.main(["archive", "--db", str(db), "--older-than", "0", "--out", str(out), "--keep"]) == 0
    captured = capsys.readouterr()
    assert re.fullmatch(
        rf"archiving 3 pipeline\(s\) finished or revoked more than 0 day\(s\) ago {CUTOFF} from "
        rf"{re.escape(str(db))} to {re.escape(str(out))}; nothing is deleted\n",
        captured.err,
    ), captured.err
    assert captured.out == f"archived 3 pipeline(s) -> {out}\n"
    assert len(out.read_text().splitlines()) == 3
    assert _present(db, [*old, new]) == [*old, new]


def test_store_takes_a_url_like_the_operator_commands(
    store: tuple[Path, list[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, old, new = store
    url = f"sqlite:///{db}"
    assert cli.main(["archive", "--store", url, "--older-than", "5", "--no-export"]) == cli.EXIT_OK
    captured = capsys.readouterr()
    assert captured.out == "deleted 2 pipeline(s)\n", captured.out
    assert _present(db, [*old, new]) == [new]


def test_a_missing_store_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RATTAN_STORE", raising=False)
    missing = tmp_path / "nothing.db"
    assert cli.main(["archive", "--store", str(missing), "--older-than", "1", "--no-export"]) == (
        cli.EXIT_INPUT_ERROR
    )
    assert capsys.readouterr().err == (
        f"rattan: no store at {missing} (give --store URL or set RATTAN_STORE)\n"
    )
    assert not missing.exists()
