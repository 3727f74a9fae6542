"""The patient app in a real browser (Debian's chromium through Playwright), phone-sized: a patient
signs in with the code the nurse gave (a wrong code first), sees today's readings in plain words,
switches to Chinese, reads a message (the receipt the ward sees), answers "I need help" (on the
incident's timeline and the ward console's stream), and the service worker is registered.
Screenshots in English and Chinese go to docs/screenshots/."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from standins.openai_api import OpenAIStandIn
from standins.twilio_api import TwilioStandIn
from ward import SID, TOKEN, run_ward, wait_until

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter) is deprecated:DeprecationWarning")]

CHROMIUM = shutil.which("chromium") or os.environ.get("VIGIL_CHROMIUM")
SHOTS = Path(os.environ.get("VIGIL_SCREENSHOTS", Path(__file__).resolve().parents[2] / "docs" / "screenshots"))
PHONE = {"width": 390, "height": 844}


async def sign_in(page, base: str, code: str) -> None:
    await page.goto(f"{base}/app/")
    await page.locator("#signin").wait_for(timeout=10_000)
    await page.get_by_label("Your code").fill("WRONGCODE1")
    await page.get_by_role("button", name="Connect").click()
    await page.locator("#code-error", has_text="did not work").wait_for(timeout=10_000)
    await page.get_by_label("Your code").fill(code.lower())  # as a patient may type it
    await page.get_by_role("button", name="Connect").click()
    await page.locator("#home").wait_for(timeout=10_000)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: deploy/local/browser installs Debian's (tests/run.sh does)")
async def test_patient_signs_in_reads_answers_and_the_ward_hears(tmp_path, free_port, http_port, smtp, monkeypatch):
    from playwright.async_api import async_playwright

    controller, _ = smtp
    with TwilioStandIn(SID, TOKEN) as twilio, OpenAIStandIn("good") as llm:
        runtime = await run_ward(tmp_path, free_port, http_port, llm, twilio, controller.port, monkeypatch)
        base = f"http://127.0.0.1:{http_port}"
        try:
            await wait_until(lambda: runtime.alerting.patient_app.messages("pt-7"), 20, "a delivered patient text")
            code = runtime.alerting.people.codes.issue("pt-7", "local:nurse")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                context = await browser.new_context(viewport=PHONE, locale="en-GB", device_scale_factor=1,
                                                    is_mobile=True, has_touch=True)
                page = await context.new_page()
                await sign_in(page, base, code)
                readings = page.locator("#readings")
                await readings.get_by_text("Your oxygen level was 85 %").wait_for(timeout=10_000)
                assert "outside your usual range" in await readings.inner_text()
                assert "in your usual range" in await readings.inner_text()  # heart rate 78
                await page.locator("#alerts").get_by_role("button", name="I need help").wait_for(timeout=10_000)
                await page.locator("#trend svg[role=img]").wait_for(timeout=10_000)  # 20 minutes: two quarter hours
                assert await page.evaluate("navigator.serviceWorker.ready.then(r => r.active.scriptURL)") == \
                    f"{base}/app/sw.js"
                first = page.locator("#message-list li").first
                await first.get_by_role("button", name="Mark as read").click()
                await first.locator("p.meta", has_text=re.compile(r"^Read \d")).wait_for(timeout=10_000)
                await page.screenshot(path=str(SHOTS / "patient-app-en.png"), full_page=True)
                await page.get_by_role("button", name="中文").click()
                await page.locator("#today-h", has_text="今天的读数").wait_for(timeout=10_000)
                assert await page.evaluate("document.documentElement.lang") == "zh-CN"
                assert "您的血氧水平" in await readings.inner_text()
                await page.screenshot(path=str(SHOTS / "patient-app-zh.png"), full_page=True)
                await page.locator("#alerts").get_by_role("button", name="我需要帮助").click()
                await page.locator("#status", has_text="护理团队").wait_for(timeout=10_000)
                await browser.close()
            incident_id = runtime.alerting.store.incidents(patient_id="pt-7")[0]["incident_id"]
            timeline = [a["event"] for a in runtime.alerting.store.audit(incident_id)]
            assert "patient_help" in timeline
            console = [e for e in runtime.alerting.hub.events("console") if e.payload.get("event") == "patient_help"]
            assert console and "PATIENT ASKS FOR HELP" in console[0].subject
            read = [m for m in runtime.alerting.patient_app.messages("pt-7") if m["read_t"] is not None]
            assert len(read) == 1  # the receipt the ward sees (GET /api/patients/pt-7/messages)
        finally:
            await runtime.stop()
