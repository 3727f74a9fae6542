"""The ward workspace in a real browser (Debian's chromium through Playwright), signed in for real:
the ward overview with the patient's row, live updates hammered without a duplicate row ever
drawn, the patient page with its charts drawn, acknowledge and resolve with an outcome, and the
outcome's export (`vigil outcomes export`, account-checked and audited)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import ROSTER, SID, TOKEN, run_ward

from vigil.core.identity import Role
from vigil.shell.notify.channels.base import Delivery

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

CHROMIUM = shutil.which("chromium") or os.environ.get("VIGIL_CHROMIUM")
SHOTS = Path(os.environ.get("VIGIL_SCREENSHOT_DIR", "/tmp"))
PASSWORD = "a long passphrase"
# Counts the patient rows after every change of the table: the most ever drawn at once.
WATCH_ROWS = """() => { window.maxRows = 0; const body = document.getElementById('rows');
  new MutationObserver(() => { window.maxRows = Math.max(window.maxRows, body.querySelectorAll('tr[data-patient]').length); })
    .observe(body, {childList: true, subtree: true}); }"""
# Pixels of the bands' blue in a chart's canvas: the data was drawn, not only the axes.
BAND_PIXELS = """holder => { const c = holder.querySelector('canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i + 2] > 150 && d[i] < 120) n++; return n; }"""


def _hammer(runtime, first: int, n: int) -> None:
    """`n` live events on the console inbox about pt-7, as the dispatcher would push them."""
    for i in range(first, first + n):
        runtime.alerting.hub.publish(Delivery(f"hammer-{i}", "app", "console", "console", "clinician", "update", "",
                                              {"incident": {"patient_id": "pt-7"}}))


async def _sign_in(page, base: str) -> None:
    await page.goto(f"{base}/ward")
    await page.locator("#login").wait_for(timeout=10_000)
    assert await page.locator("#rows tr[data-patient]").count() == 0  # nothing of the ward before signing in
    await page.fill("#username", "jo")
    await page.fill("#password", PASSWORD)
    await page.click("#login button[type=submit]")
    await page.locator("#whoami", has_text="Jo Nurse").wait_for(timeout=10_000)


async def _overview_under_live_updates(page, runtime) -> None:
    row = page.locator("#rows tr[data-patient='pt-7']")
    await row.wait_for(timeout=10_000)
    assert "hypoxaemia" in await row.inner_text() and "85 %" in await row.inner_text()
    await page.locator("#live", has_text="live").wait_for(timeout=10_000)
    await page.evaluate(WATCH_ROWS)
    before = await page.evaluate("window.vigilWard.refreshes")
    for burst in range(3):  # live events and clicks' refreshes, all at once
        _hammer(runtime, burst * 20, 20)
        await page.evaluate("() => Promise.all(Array.from({length: 25}, () => window.vigilWard.refresh()))")
    await page.wait_for_function(f"window.vigilWard.refreshes > {before}", timeout=10_000)
    await page.evaluate("window.vigilWard.refresh()")  # the last one, after everything above
    assert await page.locator("#rows tr[data-patient]").count() == 1
    assert await page.evaluate("window.maxRows") == 1  # never two rows of one patient, not even for a moment
    await page.screenshot(path=str(SHOTS / "vigil-ward-overview.png"), full_page=True)


async def _patient_page(page, runtime) -> str:
    await page.click("#rows tr[data-patient='pt-7'] a")
    await page.locator("#charts canvas").first.wait_for(timeout=10_000)
    await page.click(".spans button[data-span='1h']")
    spo2 = page.locator("#charts .chart[data-vital='spo2']")
    await spo2.locator("canvas").wait_for(timeout=10_000)
    assert await page.locator("#charts canvas").count() == 7
    await page.wait_for_function("document.querySelectorAll('#charts canvas').length === 7")
    # The SpO2 band was drawn. Asked until it is: choosing a span draws the charts again, so a canvas found a
    # moment ago may be gone (a CI run read a chart holder between its two drawings: no canvas in it).
    await page.wait_for_function(f"""() => {{ const h = document.querySelector("#charts .chart[data-vital='spo2']");
        return !!(h && h.querySelector('canvas')) && ({BAND_PIXELS})(h) > 50; }}""", timeout=10_000)
    assert "partial" in await page.locator("#news2").inner_text()  # the wearable reports no consciousness or oxygen
    assert "patient app" in await page.locator("#replies-source").inner_text()
    await page.locator("#incident button", has_text="Acknowledge").click()
    await page.locator("#incident", has_text="acknowledged by Jo Nurse").wait_for(timeout=10_000)
    await page.screenshot(path=str(SHOTS / "vigil-patient-page.png"), full_page=True)
    await page.locator("#incident button", has_text="Resolve").click()
    await page.check("input[name=outcome][value=true_deterioration]")
    await page.fill("#resolve-note", "Saturations 85 % confirmed on a second probe; seen by the GP")
    await page.click("#resolve-ok")
    await page.locator("#incident", has_text="No open incident").wait_for(timeout=10_000)
    await page.locator("#timeline", has_text="outcome: true deterioration").wait_for(timeout=10_000)
    return runtime.alerting.store.incidents()[0]["incident_id"]


def _export(data_dir: Path, roster: Path, password: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIGIL_DATA_DIR": str(data_dir), "VIGIL_ROSTER": str(roster)}
    return subprocess.run([sys.executable, "-m", "vigil.cli", "outcomes", "export", "--as", "jo", "--format", "csv"],
                          input=password + "\n", env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: deploy/local/browser installs Debian's (tests/run.sh does)")
async def test_nurse_works_the_ward_from_overview_to_resolved_outcome(tmp_path, free_port, http_port, smtp, monkeypatch):
    from playwright.async_api import async_playwright

    controller, _ = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        runtime.alerting.people.accounts.add("jo", Role.NURSE, wards=["ward"], display_name="Jo Nurse", password=PASSWORD)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = await browser.new_page(viewport={"width": 1400, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                await _sign_in(page, f"http://127.0.0.1:{http_port}")
                await _overview_under_live_updates(page, runtime)
                incident_id = await _patient_page(page, runtime)
                await browser.close()
            assert errors == []
            incident = runtime.alerting.store.incident(incident_id)
            assert (incident["outcome"], incident["resolved_by"]) == ("true_deterioration", "Jo Nurse")
            roster = tmp_path / "roster.yaml"
            roster.write_text(yaml.safe_dump(ROSTER.model_dump(mode="json")))
            assert _export(tmp_path / "data", roster, "wrong password").returncode == 2
            exported = _export(tmp_path / "data", roster, PASSWORD)
            assert exported.returncode == 0, exported.stderr
            lines = exported.stdout.strip().splitlines()
            assert lines[0].startswith("incident_id,alert_id,patient_id,outcome,note") and len(lines) >= 2
            assert all(f"{incident_id}," in line and ",pt-7,true_deterioration," in line for line in lines[1:])
            audit = [(r["action"], r["outcome"], r["patient_id"]) for r in runtime.alerting.audit.export()]
            assert ("export outcomes", "denied", None) in audit and ("export outcomes", "ok", "pt-7") in audit
            assert ("read ward", "ok", "pt-7") in audit and ("read patient", "ok", "pt-7") in audit
        finally:
            await runtime.stop()
