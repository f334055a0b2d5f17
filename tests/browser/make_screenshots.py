"""Take the dashboard screenshots of the docs (docs/images/dashboard-*.png): start ``rattan
serve`` on a temporary store, run a few pipelines into a mix of states, and photograph the list of
runs and one run's page in Debian's Chromium.

    python tests/browser/make_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from dashboard_live import Live, act, chromium, linear, live_server, parallel, sign_in, subprocess_of

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1440, "height": 860}


def populate(live: Live) -> tuple[str, str, str]:
    """Runs in every state; returns the ids of the showcase run, its failed node and its subprocess."""
    for _ in range(3):
        done = live.submit(
            linear(act("dash_sleep", "Extract", seconds=0.05), act("dash_sleep", "Load", seconds=0.05))
        )
    live.wait_state(done, "FINISHED")
    paused = live.submit(
        linear(act("dash_sleep", "Warm caches", seconds=1.5), act("dash_sleep", "Serve", seconds=0))
    )
    live.http.post(f"/api/v1/pipelines/{paused}/pause")
    revoked = live.submit(linear(act("dash_wait", "Await approval")))
    live.http.post(f"/api/v1/pipelines/{revoked}/revoke")
    charge = act("dash_fail", "Charge cards", ok=False, batch="2026-12-07")
    notify = act("dash_wait", "Notify warehouse")
    invoices = subprocess_of(
        act("dash_sleep", "Render PDFs", seconds=0.05),
        act("dash_sleep", "Archive", seconds=0.05),
        name="Build invoices",
    )
    tree = parallel(
        act("dash_sleep", "Fetch orders", seconds=0.05),
        [charge, notify, invoices],
        act("dash_sleep", "Send report"),
    )
    showcase = live.submit(tree)
    live.wait_node(charge.id, lambda n: n["state"] == "FAILED")
    live.wait_node(notify.id, lambda n: bool(n.get("waiting")))
    live.wait_node(invoices.id, lambda n: n["state"] == "FINISHED")
    running = live.submit(linear(act("dash_sleep", "Crunch numbers", seconds=30)))
    live.wait_node(running, lambda n: n["state"] == "RUNNING")
    live.wait_state(paused, "SUSPENDED")
    return showcase, charge.id, invoices.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp)) as live, chromium() as browser:
        showcase, failed, subprocess = populate(live)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{live.base}/dashboard/")
        sign_in(page)
        page.wait_for_selector("tr.run", timeout=15000)
        page.wait_for_timeout(300)
        page.set_viewport_size({"width": VIEWPORT["width"], "height": 600})  # the list is short
        page.screenshot(path=str(out / "dashboard-list.png"))
        page.set_viewport_size(VIEWPORT)
        page.goto(f"{live.base}/dashboard/#/pipelines/{showcase}?node={failed}")
        page.wait_for_selector("#ex-data", timeout=15000)
        page.wait_for_selector("#live[data-status=live]", timeout=15000)
        page.click(f"[data-toggle='{subprocess}']")
        page.wait_for_selector(f"[data-node-id='{subprocess}'] .node", timeout=5000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "dashboard-pipeline.png"))
    print(f"wrote {out / 'dashboard-list.png'} and {out / 'dashboard-pipeline.png'}")


if __name__ == "__main__":
    main()
