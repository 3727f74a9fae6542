"""The ward console in a real browser (Debian's chromium through Playwright): a nurse logs in for
real, an incident shows up live, she acknowledges it with her name on the audit trail, and logs out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import SID, TOKEN, run_ward

from vigil.core.identity import Role

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

CHROMIUM = shutil.which("chromium") or os.environ.get("VIGIL_CHROMIUM")
SCREENSHOT = Path(os.environ.get("VIGIL_CONSOLE_SCREENSHOT", "/tmp/vigil-console.png"))


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: deploy/local/browser installs Debian's (tests/run.sh does)")
async def test_clinician_acknowledges_an_incident_in_the_console(tmp_path, free_port, http_port, smtp, monkeypatch):
    from playwright.async_api import async_playwright

    controller, _ = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        runtime.alerting.people.accounts.add("browser", Role.NURSE, wards=["ward"], display_name="Dr Browser",
                                             password="a long passphrase")
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{http_port}/console")
                await page.locator("#login").wait_for(timeout=10_000)  # nothing of the ward before a login
                assert await page.locator("#incidents tr[data-incident]").count() == 0
                await page.fill("#username", "browser")
                await page.fill("#password", "not the password")
                await page.click("#login button[type=submit]")
                await page.locator("#login-error", has_text="Wrong username or password").wait_for(timeout=10_000)
                await page.fill("#password", "a long passphrase")
                await page.click("#login button[type=submit]")
                await page.locator("#whoami", has_text="Dr Browser").wait_for(timeout=10_000)
                row = page.locator("#incidents tr[data-incident]")
                await row.first.wait_for(timeout=10_000)
                assert await row.count() == 1
                assert "hypoxaemia" in await row.first.inner_text()
                await page.locator("#live", has_text="live").wait_for(timeout=10_000)
                await row.first.get_by_role("button", name="Acknowledge").click()
                await page.locator("#incidents", has_text="acknowledged by Dr Browser").wait_for(timeout=10_000)
                # The acknowledgement came back over the console's live stream.
                await page.locator("#feed", has_text="Acknowledged").wait_for(timeout=10_000)
                await page.screenshot(path=str(SCREENSHOT))
                assert await row.count() == 1  # still one row: overlapping refreshes draw once
                cookie = next(c for c in await page.context.cookies() if c["name"] == "vigil_session")
                assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                await page.click("#logout")
                await page.locator("#login").wait_for(timeout=10_000)
                assert (await page.request.get(f"http://127.0.0.1:{http_port}/api/incidents")).status == 401
                await browser.close()
            incident = runtime.alerting.store.incidents()[0]
            audit = runtime.alerting.store.audit(incident["incident_id"])
            assert incident["state"] == "acknowledged"
            assert [(a["event"], a["actor"]) for a in audit if a["event"] == "acknowledged"] == [("acknowledged", "Dr Browser")]
        finally:
            await runtime.stop()
