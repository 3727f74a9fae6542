"""The ward console in a real browser (Debian's chromium through Playwright): an incident shows
up live, and a clinician acknowledges it with their name on the audit trail."""

from __future__ import annotations

import os
import shutil

import pytest
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import SID, TOKEN, run_ward

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

CHROMIUM = shutil.which("chromium") or os.environ.get("VIGIL_CHROMIUM")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: deploy/local/browser installs Debian's (tests/run.sh does)")
async def test_clinician_acknowledges_an_incident_in_the_console(tmp_path, free_port, http_port, smtp, monkeypatch):
    from playwright.async_api import async_playwright

    controller, _ = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{http_port}/console")
                await page.fill("#actor", "Dr Browser")
                await page.dispatch_event("#actor", "change")
                row = page.locator("#incidents tr[data-incident]")
                await row.first.wait_for(timeout=10_000)
                assert await row.count() == 1
                assert "hypoxaemia" in await row.first.inner_text()
                await page.locator("#live", has_text="live").wait_for(timeout=10_000)
                await row.first.get_by_role("button", name="Acknowledge").click()
                await page.locator("#incidents", has_text="acknowledged by Dr Browser").wait_for(timeout=10_000)
                # The acknowledgement came back over the console's live stream.
                await page.locator("#feed", has_text="Acknowledged").wait_for(timeout=10_000)
                await browser.close()
            incident = runtime.alerting.store.incidents()[0]
            audit = runtime.alerting.store.audit(incident["incident_id"])
            assert incident["state"] == "acknowledged"
            assert [(a["event"], a["actor"]) for a in audit if a["event"] == "acknowledged"] == [("acknowledged", "Dr Browser")]
        finally:
            await runtime.stop()
