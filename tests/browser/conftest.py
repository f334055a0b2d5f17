"""Fixtures of the dashboard's browser tests: one real ``rattan serve`` and one headless Chromium
(Debian's, driven by Playwright) for the module, and a fresh signed-in page per test that fails
the test if the page asked anything of another origin (the dashboard must work offline).

Without Chromium or Playwright the tests are skipped, saying why; with RATTAN_REQUIRE_BROWSER=1
(CI) they fail instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_live import Live, chromium, chromium_path, live_server

from rattan.testing.servers import unavailable


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with live_server(Path(tmp_path_factory.mktemp("dashboard"))) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        unavailable("Chromium", "RATTAN_REQUIRE_BROWSER", f"Playwright is not installed ({exc})")
    if chromium_path() is None:
        unavailable("Chromium", "RATTAN_REQUIRE_BROWSER", "no chromium on PATH (apt-get install chromium)")
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A new browser context's page on the dashboard, not signed in yet."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15000)
    tab = context.new_page()
    elsewhere: list[str] = []
    tab.on(
        "request", lambda req: None if req.url.startswith((live.base, "data:")) else elsewhere.append(req.url)
    )
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # what the page's own policy refuses (an inline style, say) fails silently otherwise
    tab.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    tab.goto(f"{live.base}/dashboard/")
    yield tab
    context.close()
    assert elsewhere == [], "the dashboard asked another origin"
    assert errors == [], "script errors or policy violations on the page"
