"""The admin console in a real browser (Debian's chromium driven by Playwright, issue #13 part 1).

On an empty system (the embedded runtime against the stand-ins, no seed), an admin signs in and
sets up the tenant, its credentials and a line through the page alone; a simulated call on that
line becomes a Jira request, and the calls page shows it with its request key. Along the way: a
line field's validation error shows next to that field, a read-only token sees no write control,
and the page sends nothing to a host other than this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Route, async_playwright, expect

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket.samples import sample_calls
from voiceticket_sandbox import SandboxUrls, run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    JIRA_EMAIL,
    JIRA_TOKEN,
    OPENAI_KEY,
    REQUEST_TYPES,
    SERVICE_DESK_ID,
    SMS_FROM,
    SUPPORT_LINE,
    configure_sandboxes,
)
from voiceticket_sandbox.testing import eventually, invalid_provider_requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REFUSE_ONCE = {
    "method": "POST",
    "path_regex": "/v1/audio/transcriptions$",
    "status": 400,
    "body": {"error": {"message": "refused once by the test", "type": "invalid_request_error"}},
}
ELSEWHERE = "https://cdn.example.com/library.js"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def keep_local(leaks: list[str]) -> Callable[[Route], Awaitable[None]]:
    """A route handler that lets loopback requests through and aborts (and notes) any other."""

    async def handle(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname in LOOPBACK:
            await route.continue_()
            return
        if url.startswith(("data:", "blob:", "about:")):
            await route.continue_()
            return
        leaks.append(url)
        await route.abort()

    return handle


async def issues_of(http: httpx.AsyncClient, urls: SandboxUrls, call_sid: str) -> list[dict[str, Any]]:
    issues = (await http.get(f"{urls.jira}/_sandbox/issues")).json()
    return [i for i in issues if i["properties"].get("voiceticket.call", {}).get("callSid") == call_sid]


async def nav(page: Page, section: str) -> None:
    await page.get_by_role("navigation", name="Sections").get_by_role("link", name=section).click()
    await expect(page.locator("#view h1")).to_contain_text(section.split()[0])


async def sign_in_with_the_keyboard(page: Page, token: str) -> None:
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.get_by_label("Admin token")).to_be_focused()
    await page.keyboard.type("vtk_not-a-token")
    await page.keyboard.press("Enter")
    await expect(page.locator("#token-error")).to_have_text("This token is not known here (or was revoked).")
    await expect(page.get_by_label("Admin token")).to_be_focused()
    await page.keyboard.press("Control+A")
    await page.keyboard.type(token)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Tenants", exact=True)).to_be_visible()


async def create_the_tenant(page: Page, urls: SandboxUrls) -> None:
    await page.get_by_role("link", name="New tenant").click()
    await page.get_by_label("Tenant id (required)").fill("acme")
    await page.get_by_label("Name (required)", exact=True).fill("Acme Corp")
    await page.get_by_label("Jira site address (required)").fill(urls.jira)
    await page.get_by_label("Jira bot e-mail").fill(JIRA_EMAIL)
    await page.get_by_label("Twilio Account SID").fill(ACCOUNT_SID)
    await page.get_by_label("OpenAI-compatible server").fill(f"{urls.openai}/v1")
    await page.get_by_role("button", name="Create tenant").click()
    await expect(page.get_by_role("heading", name="Tenant acme")).to_be_visible()


async def set_the_credentials(page: Page) -> None:
    for label, value in (
        ("Jira API token", JIRA_TOKEN),
        ("Twilio auth token", AUTH_TOKEN),
        ("OpenAI API key", OPENAI_KEY),
    ):
        status = page.locator(f"#credential-{label_to_name(label)}-status")
        await expect(status).to_contain_text("not set")
        await page.get_by_label(f"New {label}").fill(value)
        await page.get_by_label(f"New {label}").press("Enter")  # the keyboard submits the form
        await expect(status).to_contain_text("set (••••" + value[-4:] + ")")
        await expect(page.get_by_role("button", name=f"Rotate {label}")).to_be_visible()
    html = await page.content()
    assert JIRA_TOKEN not in html and AUTH_TOKEN not in html and OPENAI_KEY not in html, "write-only"


def label_to_name(label: str) -> str:
    return {
        "Jira API token": "jira_api_token",
        "Twilio auth token": "twilio_auth_token",
        "OpenAI API key": "openai_api_key",
    }[label]


async def check_the_connection(page: Page) -> None:
    await page.get_by_role("button", name="Test connection").click()
    results = page.locator("#connection-results")
    for provider in ("jira", "twilio", "openai"):  # each stand-in's own answer, accepted
        await expect(results.get_by_role("row").filter(has_text=provider)).to_contain_text("OK")
    await expect(results).to_contain_text("200")


async def create_the_line(page: Page) -> None:
    await nav(page, "Lines")
    await page.get_by_role("link", name="New line").click()
    await page.get_by_label("Phone number (required)").fill(SUPPORT_LINE)
    await expect(page.get_by_label("Tenant (required)")).to_have_value("acme")
    await page.get_by_label("Service desk id (required)").fill(SERVICE_DESK_ID)
    await page.get_by_label("Default request type id (required)").fill(REQUEST_TYPES["other"])
    mapping = "\n".join(f"{intent}={rid}" for intent, rid in REQUEST_TYPES.items())
    await page.get_by_label("Request types by intent").fill(mapping)
    await page.get_by_label("SMS sender number").fill(SMS_FROM)
    await page.get_by_label("Greeting").fill("Thank you for calling Acme support.")
    longest = page.get_by_label("Longest message (seconds)")
    await longest.fill("2")
    await page.get_by_role("button", name="Create line").click()
    # The API's 422 shows next to the field it is about, and the field is marked and focused.
    error = page.locator("#line-max_recording_seconds-error")
    await expect(error).to_contain_text("greater than or equal to 5")
    await expect(longest).to_have_attribute("aria-invalid", "true")
    await expect(longest).to_be_focused()
    assert await page.locator(".field .error:not(:empty)").count() == 1, "only that field has an error"
    await longest.fill("120")
    await page.get_by_role("button", name="Create line").click()
    await expect(page.get_by_text(f"Line {SUPPORT_LINE} created.").first).to_be_visible()
    await expect(page.get_by_role("link", name=SUPPORT_LINE)).to_be_visible()


async def create_a_read_only_token(page: Page) -> str:
    await nav(page, "Tokens")
    await page.get_by_label("Name (required)", exact=True).fill("viewer")
    await page.get_by_label("Scope").select_option("read-only")
    await page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-secret")
    await expect(secret).to_have_value(re.compile(r"^vtk_"))
    token = await secret.input_value()
    await expect(page.get_by_role("row").filter(has_text="viewer")).to_contain_text("read-only")
    return token


async def audit_log_shows_the_changes(page: Page) -> None:
    await nav(page, "Audit log")
    await page.get_by_label("Action").fill("credential.*")
    await page.get_by_role("button", name="Show entries").click()
    entries = page.locator("#audit-list tbody tr")
    await expect(entries).to_have_count(3)
    await expect(entries.first).to_contain_text("admin")
    await expect(entries.first).to_contain_text("tenant:acme")


async def a_call_is_dead_lettered_then_replayed(
    page: Page, http: httpx.AsyncClient, urls: SandboxUrls, api: str, admin: dict[str, str], call_sid: str
) -> dict[str, Any]:
    """The call's transcription was refused once: the calls page shows the dead letter, Replay
    (pressed with the keyboard) sends it again, and the call becomes a request."""

    async def dead_letters() -> list[dict[str, Any]]:
        r = await http.get(f"{api}/v1/calls/{call_sid}", headers=admin)
        return r.json()["dead_letters"] if r.status_code == 200 else []

    [letter] = await eventually(dead_letters, 60)
    await nav(page, "Calls")
    row = page.get_by_role("row").filter(has_text=call_sid)
    await expect(row).to_contain_text("failed")
    await row.get_by_role("link", name=call_sid).click()
    await expect(page.get_by_role("heading", name=f"Call {call_sid}")).to_be_visible()
    letters = page.get_by_role("table", name="Dead letters of this call")
    await expect(letters).to_contain_text(letter["group"])
    replay = letters.get_by_role("button", name=f"Replay dead letter {letter['id']}")
    await replay.focus()
    await page.keyboard.press("Enter")
    await expect(replay).to_have_text("Replayed")
    await eventually(lambda: issues_of(http, urls, call_sid), 60)
    await asyncio.sleep(0.5)  # a duplicate would show up now
    [issue] = await issues_of(http, urls, call_sid)
    return issue


async def calls_page_shows(page: Page, call_sid: str, request_key: str) -> None:
    await nav(page, "Calls")
    row = page.get_by_role("row").filter(has_text=call_sid)
    await expect(row).to_contain_text(request_key)
    await row.get_by_role("link", name=call_sid).click()
    await expect(page.get_by_role("heading", name=f"Call {call_sid}")).to_be_visible()
    for stage in ("Received", "Transcribed", "Analysed", "Request", "SMS"):
        await expect(page.locator(".stages")).to_contain_text(f"{stage} — done")
    await expect(page.locator(".facts")).to_contain_text(request_key)
    await expect(page.get_by_role("table", name="Dead letters of this call")).to_contain_text("replayed")
    await page.get_by_role("button", name="Show transcript").click()
    await expect(page.locator("#transcript")).not_to_be_empty()


async def edit_and_delete(page: Page, urls: SandboxUrls) -> None:
    """A tenant and a line edited in place; a second tenant created and deleted (asked twice)."""
    await nav(page, "Tenants")
    await page.get_by_role("link", name="acme", exact=True).click()
    await page.get_by_label("Name (required)", exact=True).fill("Acme Corporation")
    await page.get_by_role("button", name="Save tenant").click()
    await expect(page.locator(".flash")).to_have_text("Tenant acme saved (name).")
    await expect(page.get_by_label("Name (required)", exact=True)).to_have_value("Acme Corporation")
    await nav(page, "Lines")
    await page.get_by_role("link", name=SUPPORT_LINE).click()
    await expect(page.get_by_label("Service desk id (required)")).to_have_value(SERVICE_DESK_ID)
    await page.get_by_label("Greeting").fill("Acme support, thank you for calling.")
    await page.get_by_role("button", name="Save line").click()
    await expect(page.locator(".flash")).to_have_text(f"Line {SUPPORT_LINE} saved.")
    await nav(page, "Tenants")
    await page.get_by_role("link", name="New tenant").click()
    await page.get_by_label("Tenant id (required)").fill("scratch")
    await page.get_by_label("Name (required)", exact=True).fill("Scratch")
    await page.get_by_label("Jira site address (required)").fill(urls.jira)
    await page.get_by_role("button", name="Create tenant").click()
    await page.get_by_role("button", name="Delete tenant…").click()
    await expect(page.get_by_role("button", name="Delete scratch")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator(".flash")).to_contain_text("Tenant scratch deleted with 0 line(s)")
    await expect(page.locator("#view tbody")).not_to_contain_text("scratch")


async def revoke_as_admin(page: Page, admin_token: str, name: str) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await page.keyboard.type(admin_token)
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Signed in as admin (admin)")).to_be_visible()
    await nav(page, "Tokens")
    row = page.get_by_role("row").filter(has_text=name)
    await row.get_by_role("button", name="Revoke").click()
    await page.get_by_role("button", name=f"Revoke {name}").click()
    await expect(page.locator(".flash")).to_have_text(f"Token {name} revoked.")
    await expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("revoked")


async def read_only_sees_no_write_control(page: Page, token: str, call_sid: str) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Admin token")).to_be_focused()
    assert await page.evaluate("sessionStorage.length") == 0, "signing out forgets the token"
    await page.get_by_label("Admin token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("Signed in as viewer (read-only)")).to_be_visible()
    main = page.locator("#view")
    await nav(page, "Tenants")
    await expect(main.get_by_role("link", name="acme")).to_be_visible()
    assert await main.get_by_role("link", name="New tenant").count() == 0
    for where in ("#/tenants/acme", f"#/lines/{SUPPORT_LINE.replace('+', '%2B')}", "#/tokens"):
        await page.goto(page.url.split("#")[0] + where)
        await expect(page.locator("#view h1")).not_to_have_text(re.compile("Tenants|Something went wrong"))
        assert await main.get_by_role("button").count() == 0, f"a write control on {where}"
        assert (
            await main.locator(
                "input:not([disabled]), select:not([disabled]), textarea:not([disabled])"
            ).count()
            == 0
        )
    await page.goto(page.url.split("#")[0] + "#/lines")
    await expect(main.get_by_role("link", name=SUPPORT_LINE)).to_be_visible()
    assert await main.get_by_role("link", name="New line").count() == 0
    await page.goto(page.url.split("#")[0] + f"#/calls/{call_sid}")
    await expect(main.get_by_role("heading", name=f"Call {call_sid}")).to_be_visible()
    await expect(main.get_by_role("table", name="Dead letters of this call")).to_contain_text("replayed")
    assert await main.get_by_role("button").count() == 0, "no Replay, no Show transcript"


async def test_an_admin_sets_up_a_line_through_the_page_and_a_call_becomes_a_ticket(tmp_path: Path) -> None:
    expect.set_options(timeout=15_000)
    sample = next(iter(sample_calls().values()))
    async with run_sandboxes() as urls:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)  # the provider accounts only
        options = EmbeddedOptions(
            data_dir=tmp_path / "data",
            ingress_port=0,
            config_api_port=0,
            egress_allowed_hosts=["http://127.0.0.1:*"],
            twilio_api_base_url=urls.twilio,
            log_level="WARNING",
        )
        async with (
            EmbeddedRuntime(options) as runtime,
            httpx.AsyncClient(timeout=15) as http,
            async_playwright() as playwright,
        ):
            admin = {"Authorization": f"Bearer {runtime.admin_token.get_secret_value()}"}
            api = runtime.config_api_url
            assert (await http.get(f"{api}/v1/tenants", headers=admin)).json() == [], "an empty system"
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context()
            leaks: list[str] = []
            await context.route("**/*", keep_local(leaks))
            page = await context.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            try:
                await page.goto(f"{api}/admin")
                await sign_in_with_the_keyboard(page, runtime.admin_token.get_secret_value())
                await create_the_tenant(page, urls)
                await set_the_credentials(page)
                await check_the_connection(page)
                await create_the_line(page)
                viewer = await create_a_read_only_token(page)
                await audit_log_shows_the_changes(page)

                # The first transcription is refused: the call is dead-lettered, then replayed.
                (await http.post(f"{urls.openai}/_sandbox/faults", json=REFUSE_ONCE)).raise_for_status()
                caller = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
                played = await caller.play_call(
                    sample.caller, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
                )
                assert played.voice_status == 200 and played.recording_status == 204
                issue = await a_call_is_dead_lettered_then_replayed(
                    page, http, urls, api, admin, played.call_sid
                )
                await calls_page_shows(page, played.call_sid, issue["key"])
                await page.screenshot(path=str(tmp_path / "admin-console.png"), full_page=True)
                await edit_and_delete(page, urls)
                await read_only_sees_no_write_control(page, viewer, played.call_sid)
                await revoke_as_admin(page, runtime.admin_token.get_secret_value(), "viewer")
                r = await http.get(f"{api}/v1/tenants", headers={"Authorization": f"Bearer {viewer}"})
                assert r.status_code == 401, "the revoked token is refused"
                # The guard itself: a request to another host is noted (and never sent).
                probe = await context.new_page()
                with contextlib.suppress(PlaywrightError):
                    await probe.goto(ELSEWHERE)
            except BaseException:
                await page.screenshot(path=str(tmp_path / "admin-console-failure.png"), full_page=True)
                raise
            finally:
                await browser.close()
            invalid = await invalid_provider_requests(http, urls.twilio, urls.openai, urls.jira)

    assert (tmp_path / "admin-console.png").stat().st_size > 10_000
    assert leaks == [ELSEWHERE], "the page sent requests only to this machine"
    assert problems == [], "no script error, no Content-Security-Policy violation"
    assert invalid == [], "every provider request was valid per the official specs"
