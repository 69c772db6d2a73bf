"""The dashboard in a real headless Chromium against a real ``spoon-llm serve`` and the provider simulator.

Each test signs in through the page, acts as a person would (labels, buttons, the keyboard), and checks what the
page shows against what the gateway did. Waits are Playwright's auto-waiting ``expect``; nothing asserts timing.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import httpx2
import openai
import pytest
from playwright.sync_api import Page, expect

from spoon_llm.testing import Fault, ProviderSimulator

from ..conftest import MASTER_KEY, Gateway, gateway_config, start_gateway, stop_gateway
from .conftest import ARTIFACTS, Console

ADMIN = {"authorization": f"Bearer {MASTER_KEY}"}
ROOT = Path(__file__).resolve().parents[3]


def sign_in(page: Page, gateway: Gateway, key: str = MASTER_KEY) -> None:
    page.goto(gateway.url + "/ui/")
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Overview")).to_be_visible()


def go(page: Page, section: str) -> None:
    page.get_by_role("navigation", name="Dashboard sections").get_by_role("link", name=section).click()
    expect(page.get_by_role("heading", level=1, name=section)).to_be_focused()


def admin(gateway: Gateway, method: str, path: str, body: object | None = None) -> httpx2.Response:
    return httpx2.request(method, gateway.url + "/api/admin/" + path, json=body, headers=ADMIN, timeout=30)


def client(gateway: Gateway, key: str = MASTER_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=30)


def test_sign_in_with_the_keyboard_and_out(page: Page, ui_gateway: Gateway, console: Console) -> None:
    page.goto(ui_gateway.url + "/ui/")
    key = page.get_by_label("Admin key")
    expect(key).to_be_focused()
    page.keyboard.type("sk-wrong-0123456789")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("refused this key")
    # The browser itself reports the refused request on the console; nothing else may be there.
    assert console.allow(r"status of 401") != []
    user = admin(ui_gateway, "POST", "keys", {"alias": "ui-user-" + uuid.uuid4().hex[:6], "role": "user"})
    assert user.status_code == 201, user.text
    key.fill(user.json()["key"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("no admin role")
    assert console.allow(r"status of 403") != []

    expect(key).to_be_focused()
    page.keyboard.type(MASTER_KEY)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Overview")).to_be_focused()
    assert page.evaluate("sessionStorage.getItem('spoon-llm.admin-key')") == MASTER_KEY
    assert MASTER_KEY not in page.content()

    # A reload keeps the session (this tab's storage). Tab order from the top: the skip link, then the sections,
    # each a link that Enter follows.
    page.reload()
    expect(page.get_by_role("heading", level=1, name="Overview")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    keys_link = page.get_by_role("link", name="Keys")
    for _ in range(10):
        page.keyboard.press("Tab")
        if keys_link.evaluate("el => el === document.activeElement"):
            break
    expect(keys_link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Keys")).to_be_focused()
    expect(keys_link).to_have_attribute("aria-current", "page")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1, name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("Signed out.")
    assert page.evaluate("sessionStorage.length") == 0


def test_spend_rises_after_requests_through_the_gateway(page: Page, ui_gateway: Gateway) -> None:
    sign_in(page, ui_gateway)
    page.get_by_label("Budget limit (USD)").fill("5")
    page.get_by_role("button", name="Set budget").click()
    expect(page.get_by_text("budget 'global' set to $5")).to_be_visible()
    budget_used = page.get_by_test_id("budget-used")
    expect(budget_used).to_contain_text(re.compile(r"[\d.]+% of the \$5\.00 budget used"))
    expect(page.get_by_role("img", name=re.compile(r"Budget used: [\d.]+%"))).to_be_visible()
    spend = page.get_by_test_id("spend-total")
    calls = page.get_by_test_id("calls-total")
    expect(calls).to_have_text(re.compile(r"^\d"))
    before_spend, before_calls = spend.inner_text(), int(calls.inner_text().replace(",", ""))

    with client(ui_gateway) as sdk:
        for _ in range(3):
            answer = sdk.chat.completions.create(model="gpt-4o-mini",
                                                 messages=[{"role": "user", "content": "hello"}])
            assert answer.choices[0].message.content

    # The overview refreshes itself every few seconds; the Refresh button need not be pressed.
    expect(spend).not_to_have_text(before_spend)
    expect(calls).to_have_text(str(before_calls + 3))
    expect(budget_used).not_to_contain_text("($0.00 spent")
    total = admin(ui_gateway, "GET", "costs").json()["total"]
    assert total > 0
    assert spend.inner_text().startswith("$")
    expect(page.get_by_role("img", name=re.compile("Spend \\(USD, total\\)"))).to_be_visible()


def test_switch_the_backend_and_change_an_endpoint(page: Page, ui_gateway: Gateway, sim: ProviderSimulator,
                                                    console: Console) -> None:
    sign_in(page, ui_gateway)
    go(page, "Backends")
    current = admin(ui_gateway, "GET", "backend/current").json()["backend"]
    target = "anthropic" if current != "anthropic" else "openai"
    expect(page.get_by_test_id("current-backend")).to_have_text(current)
    expect(page.get_by_role("table")).to_contain_text("healthy")

    page.get_by_label("Backend", exact=True).first.select_option(target)
    page.get_by_role("button", name="Switch backend").click()
    expect(page.get_by_test_id("switch-result")).to_contain_text("Done")
    expect(page.get_by_test_id("current-backend")).to_have_text(target)
    assert admin(ui_gateway, "GET", "backend/current").json()["backend"] == target

    page.get_by_label("Backend", exact=True).first.select_option(current)
    page.get_by_label(re.compile("Skip the health check")).check()
    page.get_by_role("button", name="Switch backend").click()
    expect(page.get_by_test_id("switch-result")).to_contain_text("health check skipped")
    expect(page.get_by_test_id("current-backend")).to_have_text(current)

    endpoint_form = page.get_by_role("region", name="Point a backend at a new endpoint")
    endpoint_form.get_by_label("Backend", exact=True).select_option("sluggish")
    endpoint_form.get_by_label("New endpoint", exact=True).fill("ftp://example.com")
    endpoint_form.get_by_role("button", name="Change endpoint").click()
    expect(page.get_by_test_id("endpoint-result")).to_contain_text("starts with http:// or https://")
    endpoint_form.get_by_label("New endpoint", exact=True).fill("http://example.com/?x=1")
    endpoint_form.get_by_role("button", name="Change endpoint").click()
    expect(page.get_by_test_id("endpoint-result")).to_contain_text("must not have a query")
    assert console.allow(r"status of 400") != []  # the browser's own note of the refused request
    endpoint_form.get_by_label("New endpoint", exact=True).fill(sim.openai_base_url)
    endpoint_form.get_by_role("button", name="Change endpoint").click()
    expect(page.get_by_test_id("endpoint-result")).to_contain_text("now uses")


def test_create_a_key_shown_once_use_it_and_revoke_it(page: Page, ui_gateway: Gateway) -> None:
    alias = "ui-" + uuid.uuid4().hex[:8]
    sign_in(page, ui_gateway)
    go(page, "Keys")
    page.get_by_label("Alias").fill(alias)
    page.get_by_label("Models").fill("gpt-4o-mini")
    page.get_by_label("Budget (USD)").fill("2")
    page.get_by_label("Requests per minute").fill("100")
    page.get_by_role("button", name="Create key").click()

    shown = page.get_by_test_id("new-key")
    expect(shown).to_have_text(re.compile(r"^sk-\S{20,}$"))
    plain = shown.inner_text()
    expect(page.get_by_text("This is the only time the key is shown.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=alias)
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("100 req/min")
    expect(row).to_contain_text("of $2.00")

    with client(ui_gateway, plain) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    page.get_by_role("button", name="I have stored it").click()
    expect(shown).to_have_count(0)
    expect(page.get_by_role("heading", name="Keys", level=2)).to_be_focused()
    assert plain not in page.content()
    assert plain not in page.evaluate("JSON.stringify(sessionStorage)")
    page.get_by_role("button", name="Refresh").click()
    expect(row.locator("td[data-label=Calls]")).to_have_text("1")
    expect(row.locator("td[data-label=Spend]")).to_have_text(re.compile(r"^\$0\.0*[1-9]"))
    prefix = row.locator("td[data-label=Key]").inner_text()
    assert prefix.endswith("…") and len(prefix) <= 13 and plain.startswith(prefix[:-1])

    page.get_by_role("button", name=f"Revoke {alias}").click()
    page.get_by_role("button", name=f"Confirm revoke {alias}").click()
    expect(page.get_by_text(f"Revoked {alias}.")).to_be_visible()
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button")).to_have_count(0)
    refused = httpx2.get(ui_gateway.url + "/v1/models", headers={"authorization": f"Bearer {plain}"}, timeout=10)
    assert refused.status_code == 401


def test_audit_log_shows_admin_actions_as_text(page: Page, ui_gateway: Gateway) -> None:
    current = admin(ui_gateway, "GET", "backend/current").json()["backend"]
    assert admin(ui_gateway, "POST", "backend/switch", {"backend": current}).json()["success"] is True
    hostile = '<img src=x onerror="document.title=\'owned\'">'
    refused = admin(ui_gateway, "POST", "backend/switch", {"backend": hostile}).json()
    assert refused["success"] is False

    sign_in(page, ui_gateway)
    go(page, "Audit log")
    page.get_by_label("Action").select_option("backend_switched")
    page.get_by_role("button", name="Filter").click()
    records = page.get_by_role("table", name="Audit records, newest first")
    expect(records.get_by_role("row").filter(has_text=hostile)).to_contain_text("failed")
    ok_row = records.get_by_role("row").filter(has_text="ok").first
    expect(ok_row).to_contain_text("master")
    expect(ok_row).to_contain_text("backend_switched")
    assert records.locator("img").count() == 0
    assert page.title() != "owned"
    expect(page.get_by_role("navigation", name="Audit log pages")).to_contain_text(re.compile(r"1–\d+ of \d+"))

    ok_row.get_by_text("Before / after").click()
    expect(ok_row.get_by_text('{"backend":"' + current + '"', exact=False).first).to_be_visible()


def test_recent_calls_show_attempt_traces(page: Page, ui_gateway: Gateway, sim: ProviderSimulator) -> None:
    sim.fault("openai", Fault.unavailable(), model="flaky-model", times=None)
    with client(ui_gateway) as sdk:
        answer = sdk.chat.completions.with_raw_response.create(
            model="resilient", messages=[{"role": "user", "content": "hi"}])
    trace = answer.headers["x-spoon-attempts"]
    assert trace.startswith("flaky:503") and trace.endswith("anthropic:ok")

    sign_in(page, ui_gateway)
    go(page, "Recent calls")
    row = page.get_by_role("row").filter(has_text="resilient").filter(has_text="failed").first
    expect(row).to_contain_text("anthropic")
    row.get_by_text(re.compile(r"\d attempts, \d failed")).click()
    steps = row.get_by_role("listitem")
    expect(steps.first).to_contain_text("flaky: 503")
    expect(steps.last).to_contain_text("anthropic: ok")


def test_a_gateway_without_the_admin_api_serves_no_dashboard(page: Page, console: Console,
                                                             simulators: tuple[ProviderSimulator, ProviderSimulator],
                                                             tmp_path: Path) -> None:
    sim, slow = simulators
    bare = start_gateway(gateway_config(sim, slow, tmp_path), tmp_path)  # no master key: nobody signs in
    try:
        # The dashboard is a client of the admin API: without it, /ui says what to configure instead.
        response = page.goto(bare.url + "/ui/")
        assert response is not None and response.status == 404
        expect(page.locator("body")).to_contain_text("needs the admin API: set [server] admin_api = true")
        assert console.allow(r"status of 404") != []
    finally:
        stop_gateway(bare)


_ACCESSIBILITY = """() => {
  const problems = [];
  const named = (el) => (el.getAttribute('aria-label') || el.textContent || '').trim().length > 0;
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (!el.labels?.length && !el.getAttribute('aria-label')) problems.push('unlabelled ' + (el.id || el.outerHTML));
  }
  for (const el of document.querySelectorAll('button, a[href]')) {
    if (el.offsetParent !== null && !named(el)) problems.push('nameless ' + el.outerHTML);
  }
  for (const el of document.querySelectorAll('img')) {
    if (!el.hasAttribute('alt')) problems.push('img without alt ' + el.getAttribute('src'));
  }
  for (const el of document.querySelectorAll('[onclick], div[tabindex], span[tabindex]')) {
    problems.push('not a button: ' + el.outerHTML.slice(0, 80));
  }
  return problems;
}"""

_SECTIONS = ("Overview", "Backends", "Keys", "Recent calls", "Audit log")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_every_page_fits_and_is_labelled_at_laptop_and_phone_widths(page: Page, ui_gateway: Gateway, width: int,
                                                                   height: int, capsys: pytest.CaptureFixture[str]
                                                                   ) -> None:
    with client(ui_gateway) as sdk:
        sdk.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
    admin(ui_gateway, "POST", "budget", {"budget_limit": 5})
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, ui_gateway)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    written = []
    for section in _SECTIONS:
        if section != "Overview":
            go(page, section)
        expect(page.locator("#view .view-body[aria-busy=false]")).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{section} is {overflow}px wider than a {width}px screen"
        assert page.evaluate(_ACCESSIBILITY) == [], section
        path = ARTIFACTS / f"{section.lower().replace(' ', '-')}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
        if section == "Overview" and width == 1280 and os.environ.get("SPOON_LLM_DOCS_SCREENSHOT"):
            page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)
    with capsys.disabled():
        print(f"\ndashboard screenshots at {width}px: " + ", ".join(str(p) for p in written))
