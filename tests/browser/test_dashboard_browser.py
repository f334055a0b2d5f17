"""The dashboard in a real browser: headless Chromium on a real ``rattan serve`` (uvicorn, SQLite,
the engine running). Signing in, the list of runs and its filters, a graph following a run live
(from the event stream), and the controls: retry with new inputs, callback, pause and resume.
Every wait is bounded (Playwright's expect: 15 s at most)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dashboard_live import READER, Live, act, linear, sign_in, wait_until

pytestmark = pytest.mark.timeout(60)
WAIT = 15000  # ms: the longest any expectation waits


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def node(page: Any, node_id: str) -> Any:
    return page.locator(f"g.node[data-node-id='{node_id}']")


def open_run(page: Any, pipeline_id: str) -> None:
    page.goto(f"{page.url.split('#')[0]}#/pipelines/{pipeline_id}")
    expect(page.locator("#live")).to_have_attribute("data-status", "live", timeout=WAIT)


def test_a_wrong_token_shows_an_error_and_a_good_one_signs_in(page: Any) -> None:
    page.fill("#token", "not-a-token-of-this-server")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_have_text("This token is not valid on this server.")
    assert page.evaluate("sessionStorage.getItem('rattan.token')") is None
    sign_in(page)
    # kept for the tab: a reload stays signed in; signing out forgets it
    page.reload()
    expect(page.locator("#runs")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('rattan.token')") is None


def test_the_list_shows_runs_and_filters_them_by_state(page: Any, live: Live) -> None:
    finished = live.submit(linear(act("dash_sleep", "quick", seconds=0)))
    failing = live.submit(linear(act("dash_fail", "fails")))
    waiting = live.submit(linear(act("dash_wait", "waits")))
    live.wait_state(finished, "FINISHED")
    live.wait_node(waiting, lambda n: n["state"] == "RUNNING")
    wait_failed(live, failing)
    sign_in(page)
    rows = page.locator("tr.run")
    for run_id, state in ((finished, "FINISHED"), (failing, "RUNNING"), (waiting, "RUNNING")):
        expect(page.locator(f"tr.run[data-id='{run_id}']")).to_have_attribute("data-state", state)
    expect(page.locator(f"tr.run[data-id='{failing}']")).to_contain_text("1 failed")

    page.click("[data-filter=FINISHED]")
    expect(page.locator(f"tr.run[data-id='{waiting}']")).to_have_count(0)
    expect(page.locator(f"tr.run[data-id='{finished}']")).to_have_count(1)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.state)")) == {"FINISHED"}

    page.click("[data-filter=failed]")
    expect(page.locator(f"tr.run[data-id='{failing}']")).to_have_count(1)
    expect(page.locator(f"tr.run[data-id='{finished}']")).to_have_count(0)
    expect(page.locator(f"tr.run[data-id='{waiting}']")).to_have_count(0)

    page.click("[data-filter=all]")
    page.fill("#search", waiting[5:15])
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-id", waiting)
    page.click(f"tr.run[data-id='{waiting}'] a")
    expect(page.locator("#run-state .badge")).to_have_attribute("data-state", "RUNNING")


def wait_failed(live: Live, pipeline_id: str) -> None:
    wait_until(lambda: live.run(pipeline_id)["pipeline"]["failed_nodes"], 15, "a failed node")


def test_the_graph_follows_a_running_pipeline(page: Any, live: Live) -> None:
    sign_in(page)
    slow, second = act("dash_sleep", "slow", seconds=2), act("dash_sleep", "second", seconds=0.3)
    run_id = live.submit(linear(slow, second))
    open_run(page, run_id)
    expect(node(page, slow.id)).to_have_attribute("data-state", "RUNNING", timeout=WAIT)
    expect(node(page, second.id)).to_have_attribute("data-state", "NOT_REACHED")
    # no reload: the page learns of the changes from the event stream
    expect(node(page, slow.id)).to_have_attribute("data-state", "FINISHED", timeout=WAIT)
    expect(node(page, second.id)).to_have_attribute("data-state", "FINISHED", timeout=WAIT)
    expect(page.locator("#run-state .badge")).to_have_attribute("data-state", "FINISHED")
    states = page.locator("g.node").evaluate_all("ns => ns.map(n => n.dataset.state)")
    assert states == ["FINISHED"] * 4  # start, slow, second, end
    expect(page.locator("#run-actions button")).to_have_count(0)  # nothing to control any more


def test_retry_a_failed_node_with_new_inputs(page: Any, live: Live) -> None:
    failing = act("dash_fail", "charge", ok=False, amount=12)
    run_id = live.submit(linear(failing))
    wait_failed(live, run_id)
    sign_in(page)
    open_run(page, run_id)
    node(page, failing.id).click()
    expect(page.locator("#ex-data")).to_have_text("ok is false: retry with ok set to true")
    page.click("#node-actions [data-action=retry]")
    editor = page.locator(".dialog textarea[name=data]")
    assert json.loads(editor.input_value()) == {"ok": False, "amount": 12}
    editor.fill(json.dumps({"ok": True, "amount": 12, "ticket": "RT-7"}))
    page.click(".dialog button[type=submit]")
    expect(page.locator(".dialog")).to_have_count(0)
    expect(page.locator("#run-state .badge")).to_have_attribute("data-state", "FINISHED", timeout=WAIT)
    expect(node(page, failing.id)).to_have_attribute("data-state", "FINISHED")
    inputs = page.locator("#inputs pre")
    expect(inputs).to_contain_text('"ticket": "RT-7"')
    assert json.loads(inputs.inner_text()) == {"ok": True, "amount": 12, "ticket": "RT-7"}
    expect(page.locator("#outputs pre")).to_contain_text('"done": true')
    expect(page.locator("details.section summary", has_text="Histories")).to_have_text("Histories (1)")


def test_a_retry_with_bad_json_is_refused_in_the_dialog(page: Any, live: Live) -> None:
    failing = act("dash_fail", "charge")
    run_id = live.submit(linear(failing))
    wait_failed(live, run_id)
    sign_in(page)
    page.goto(f"{live.base}/dashboard/#/pipelines/{run_id}?node={failing.id}")
    page.click("#node-actions [data-action=retry]")
    page.locator(".dialog textarea[name=data]").fill("{not json")
    page.click(".dialog button[type=submit]")
    expect(page.locator(".dialog-error")).to_contain_text("Inputs: not valid JSON")
    page.locator(".dialog textarea[name=data]").fill("[1, 2]")
    page.click(".dialog button[type=submit]")
    expect(page.locator(".dialog-error")).to_have_text("BadInput: the inputs must be a JSON object")
    page.click(".dialog button[type=button]")  # cancel
    expect(page.locator(".dialog")).to_have_count(0)
    assert live.run(run_id)["pipeline"]["failed_nodes"][0]["id"] == failing.id


def test_send_a_callback_to_a_waiting_node(page: Any, live: Live) -> None:
    waiter = act("dash_wait", "await payment")
    run_id = live.submit(linear(waiter))
    live.wait_node(waiter.id, lambda n: bool(n.get("waiting")))
    sign_in(page)
    open_run(page, run_id)
    node(page, waiter.id).click()
    expect(page.locator(".details dd", has_text="a callback (version")).to_be_visible()
    page.click("#node-actions [data-action=callback]")
    page.locator(".dialog textarea[name=data]").fill('{"paid": true, "ref": "pay-8812"}')
    page.click(".dialog button[type=submit]")
    expect(node(page, waiter.id)).to_have_attribute("data-state", "FINISHED", timeout=WAIT)
    expect(page.locator("#run-state .badge")).to_have_attribute("data-state", "FINISHED")
    outputs = page.locator("#outputs pre")
    expect(outputs).to_contain_text('"paid": true')
    assert json.loads(outputs.inner_text())["received"] == {"paid": True, "ref": "pay-8812"}


def test_pause_and_resume_the_pipeline(page: Any, live: Live) -> None:
    first, second = act("dash_sleep", "first", seconds=1), act("dash_sleep", "second", seconds=0)
    run_id = live.submit(linear(first, second))
    sign_in(page)
    open_run(page, run_id)
    page.click("#run-actions [data-action=pause]")
    expect(page.locator("#run-state .badge")).to_have_attribute("data-state", "SUSPENDED", timeout=WAIT)
    # the running node finishes its step, and the next one waits for the resume
    expect(node(page, first.id)).to_have_attribute("data-state", "FINISHED", timeout=WAIT)
    expect(node(page, second.id)).to_have_attribute("data-state", "NOT_REACHED")
    page.click("#run-actions [data-action=resume]")
    expect(page.locator("#run-state .badge")).to_have_attribute("data-state", "FINISHED", timeout=WAIT)
    expect(node(page, second.id)).to_have_attribute("data-state", "FINISHED")


def test_a_read_only_token_sees_the_refusal_of_a_control(page: Any, live: Live) -> None:
    run_id = live.submit(linear(act("dash_wait", "waits")))
    live.wait_node(run_id, lambda n: n["state"] == "RUNNING")
    sign_in(page, READER)
    open_run(page, run_id)
    page.click("#run-actions [data-action=pause]")
    expect(page.locator("#toast")).to_contain_text("Forbidden: this token lacks the 'operate' scope")
    assert live.run(run_id)["pipeline"]["state"] == "RUNNING"


def test_an_unknown_pipeline_says_so(page: Any, live: Live) -> None:
    sign_in(page)
    page.goto(f"{live.base}/dashboard/#/pipelines/pdoes-not-exist")
    expect(page.locator("#graph .empty")).to_have_text("There is no pipeline pdoes-not-exist.")
    page.click("a.back")
    expect(page.locator("#runs")).to_be_visible()
