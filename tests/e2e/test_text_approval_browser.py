"""The console's approval panel in a real browser (Debian's chromium through Playwright), with
VIGIL_APPROVE_PATIENT_TEXTS: a physician logs in, sees the language model's text for the patient
waiting under "Messages to patients awaiting your approval", approves it, and the panel empties;
the text then reaches the patient's app. A nurse of the same ward sees no panel."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import SID, TOKEN, run_ward, wait_until

from vigil.core.identity import Role

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

CHROMIUM = shutil.which("chromium") or os.environ.get("VIGIL_CHROMIUM")
SCREENSHOT = Path(os.environ.get("VIGIL_APPROVAL_SCREENSHOT", "/tmp/vigil-console-approval.png"))
PASSWORD = "a long passphrase"


async def log_in(page, base: str, username: str, name: str) -> None:
    await page.goto(f"{base}/console")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login button[type=submit]")
    await page.locator("#whoami", has_text=name).wait_for(timeout=10_000)
    await page.locator("#incidents tr[data-incident]").first.wait_for(timeout=10_000)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: deploy/local/browser installs Debian's (tests/run.sh does)")
async def test_physician_approves_a_held_model_text_in_the_console(tmp_path, free_port, http_port, smtp, monkeypatch):
    from playwright.async_api import async_playwright

    controller, _ = smtp
    monkeypatch.setenv("VIGIL_APPROVE_PATIENT_TEXTS", "1")
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        accounts = runtime.alerting.people.accounts
        accounts.add("ahmed", Role.PHYSICIAN, wards=["ward"], display_name="Dr Ahmed", password=PASSWORD)
        accounts.add("nora", Role.NURSE, wards=["ward"], display_name="Nurse Nora", password=PASSWORD)
        store, hub = runtime.alerting.store, runtime.alerting.hub
        base = f"http://127.0.0.1:{http_port}"
        try:
            [held] = await wait_until(lambda: store.held_texts(), 20, "the model's text held for approval")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                nurse = await (await browser.new_context()).new_page()
                await log_in(nurse, base, "nora", "Nurse Nora")
                assert await nurse.locator("#reviews").is_hidden(), "a nurse cannot approve: no panel"
                page = await (await browser.new_context()).new_page()
                await log_in(page, base, "ahmed", "Dr Ahmed")
                row = page.locator(f"#review-rows tr[data-review='{held['key']}']")
                await row.wait_for(timeout=10_000)
                assert await page.locator("#reviews h2").inner_text() == "Messages to patients awaiting your approval"
                shown = await row.inner_text()
                assert "pt-7" in shown and held["body"][:20] in shown
                await page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-waiting.png")))
                await row.get_by_role("button", name="Approve").click()
                await page.locator("#reviews").wait_for(state="hidden", timeout=10_000)
                assert await page.locator("#review-rows tr").count() == 0
                await page.screenshot(path=str(SCREENSHOT))
                await browser.close()
            await wait_until(lambda: [e for e in hub.events("patient:pt-7") if e.to_json()["key"] == held["key"]], 10,
                             "the approved text in the patient's app")
            row = store.held_text(held["key"])
            assert row["status"] == "sent" and row["payload"]["review"]["by_name"] == "Dr Ahmed"
        finally:
            await runtime.stop()
