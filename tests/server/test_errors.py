"""How each rattan error becomes an HTTP answer, driven through a stand-in engine whose read raises
the error given (the real engine rarely raises some of them on purpose: a store that is away)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from server_helpers import ADMIN, TOKENS
from starlette.testclient import TestClient

from rattan import errors
from rattan.server import create_app

pytestmark = pytest.mark.timeout(30)


class Raising:
    """Just enough of an engine for ``GET /pipelines`` and the event stream: both raise."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def list_pipelines(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc

    def events(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "status", "name"),
    [
        (errors.BadInputError("bad thing"), 400, "BadInputError"),
        (errors.UnstorableValueError("['k']", "a Point value"), 400, "UnstorableValueError"),
        (errors.StartPositionInvalidException("not there"), 422, "StartPositionInvalidException"),
        (errors.NotFoundError("no such run"), 404, "NotFoundError"),
        (errors.InvalidOperationError("not now"), 409, "InvalidOperationError"),
        (errors.ScheduleFinishedError("schedule is already finished"), 409, "ScheduleFinishedError"),
        (errors.ConflictError("someone else won"), 409, "ConflictError"),
        (errors.StateVersionNotMatchError("stale"), 409, "StateVersionNotMatchError"),
        (errors.BackendUnavailableError("database is locked"), 503, "BackendUnavailableError"),
    ],
)
def test_rattan_errors_map_to_statuses(exc: Exception, status: int, name: str) -> None:
    with TestClient(create_app(Raising(exc), TOKENS), headers={"Authorization": f"Bearer {ADMIN}"}) as client:  # type: ignore[arg-type]
        res = client.get("/api/v1/pipelines")
    assert res.status_code == status
    assert res.json() == {"error": name, "message": str(exc)}
    assert res.headers.get("retry-after") == ("5" if status == 503 else None)


def test_a_bug_is_a_500_that_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Raising(KeyError("secret internals")), TOKENS)  # type: ignore[arg-type]
    client = TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"})
    with caplog.at_level(logging.ERROR, "rattan.server"), client:
        res = client.get("/api/v1/pipelines")
    assert res.status_code == 500
    assert res.json() == {"error": "InternalError", "message": "internal server error (see the server log)"}
    assert "secret internals" in caplog.text


def test_a_stream_ends_when_the_store_is_away() -> None:
    app = create_app(Raising(errors.BackendUnavailableError("gone")), TOKENS)  # type: ignore[arg-type]
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        res = client.get("/api/v1/events/stream", params={"after": 7})
    # the client reconnects after ``retry`` with its last id and loses nothing
    assert res.status_code == 200 and res.text == "retry: 2000\n\n"
