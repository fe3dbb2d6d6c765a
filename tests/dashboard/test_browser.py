"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright over
real HTTP, after traffic through the official SDKs (tests/dashboard/conftest.py). Each
view is loaded, its figures checked against the ledger, its controls clicked (filters, a
call's detail, replay, rollback), and a screenshot saved per view under the test's tmp dir
(or `TOLLHOUSE_TEST_ARTEFACTS`, never committed)."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from tests.dashboard.conftest import ADMIN_TOKEN, HOSTILE, READ_TOKEN, Site, run_apart
from tests.support import server_unreachable

from tollhouse.evals.store import EvalResult, SQLiteEvalResultStore

CHROMIUM = "/usr/bin/chromium"

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        server_unreachable(f"{CHROMIUM} is not installed (Debian's chromium package)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def artefacts(tmp_path: Path) -> Path:
    where = os.environ.get("TOLLHOUSE_TEST_ARTEFACTS")
    folder = Path(where) if where else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    yield opened
    context.close()
    # A CSP violation or a script error shows here: the page must run clean.
    assert not [error for error in errors if "401" not in error and "403" not in error], errors


def sign_in(page: Page, site: Site, token: str) -> None:
    page.goto(f"{site.url}/dashboard")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token", token)
    page.click("#signin-button")
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-loaded", "overview")


def open_view(page: Page, view: str) -> None:
    page.click(f"nav button[data-view={view}]")
    expect(page.locator("body")).to_have_attribute("data-loaded", view)
    expect(page.locator(f"#view-{view}")).to_be_visible()


def usd(amount: Decimal) -> str:
    return f"{amount:.6f}"


def test_every_view_shows_the_ledger_and_its_actions_work(
    page: Page, site: Site, artefacts: Path
) -> None:
    records = site.records()
    page.goto(f"{site.url}/dashboard")
    page.fill("#token", "not the token")
    page.click("#signin-button")
    expect(page.locator("#signin-error")).to_contain_text("not the admin token")
    sign_in(page, site, ADMIN_TOKEN)
    expect(page.locator("#role")).to_have_text("admin")

    # Overview: the figures are the ledger's.
    calls = len(records)
    errors = sum(record.status >= 400 for record in records)
    truncated = sum(record.truncated for record in records)
    spend = sum(
        (r.cost_usd for r in records if r.cost_usd is not None and not r.commitment_billed),
        Decimal(0),
    )
    expect(page.locator("#total-calls")).to_have_text(str(calls))
    expect(page.locator("#total-cost")).to_have_text(usd(spend))
    expect(page.locator("#error-rate")).to_have_text(f"{errors / calls * 100:.2f} %")
    expect(page.locator("#truncation-rate")).to_have_text(f"{truncated / calls * 100:.2f} %")
    p50 = page.locator("#latency").text_content() or ""
    exact = sorted(record.latency_ms for record in records)[(calls + 1) // 2 - 1]
    shown = float(p50.split(" / ")[0])
    # At most the upper edge of its bin (ms + 1 grows by e^0.1 a bin), rounded up to 0.1 ms.
    assert exact <= shown <= math.ceil(((exact + 1) * math.exp(0.1) - 1) * 10) / 10 + 1e-9
    assert page.locator("#chart-spend canvas").count() == 1
    routes = page.locator("#prompt-cache-table tbody tr")
    assert {routes.nth(i).locator("td").first.text_content() for i in range(routes.count())} >= {
        "claude-haiku-4-5",
        "support",
        "gpt-4o-mini",
    }
    page.screenshot(path=str(artefacts / "overview.png"), full_page=True)

    page.select_option("#spend-by", "key")
    alpha = site.keys["alpha"]["key_id"]
    expect(page.locator("#chart-spend .u-legend")).to_contain_text(alpha)
    page.select_option("#range", "7d")
    expect(page.locator("#total-calls")).to_have_text(str(calls))

    # Budgets: the alpha team's cap against its spend today.
    open_view(page, "budgets")
    team_spend = sum(
        (r.cost_usd for r in records if r.team == "alpha" and r.cost_usd is not None), Decimal(0)
    )
    row = page.locator("#budgets-table tr[data-scope=team][data-id=alpha]")
    expect(row).to_contain_text(usd(team_spend))
    expect(row).to_contain_text(usd(Decimal(5)))
    expect(page.locator(f"#budgets-table tr[data-scope=key][data-id={alpha}]")).to_contain_text(
        usd(Decimal(2))
    )
    page.screenshot(path=str(artefacts / "budgets.png"), full_page=True)

    # Lifecycle: the deprecated model in use, with its calls.
    open_view(page, "lifecycle")
    gpt_calls = sum(record.model_served == "gpt-4o-mini" for record in records)
    gpt = page.locator("#lifecycle-table tbody tr", has_text="gpt-4o-mini")
    expect(gpt).to_contain_text("deprecated")
    expect(gpt.locator("td").nth(6)).to_have_text(str(gpt_calls))
    page.screenshot(path=str(artefacts / "lifecycle.png"), full_page=True)

    # Evals: a stored result is listed.
    record_eval(site)
    open_view(page, "evals")
    expect(page.locator("#evals-table tbody tr").first).to_contain_text("support-suite")
    expect(page.locator("#evals-table tbody tr").first).to_contain_text("canary")
    page.screenshot(path=str(artefacts / "evals.png"), full_page=True)

    # Calls: the table, a filter, the hostile prompt shown as text, replay.
    open_view(page, "calls")
    expect(page.locator("#calls-table tbody tr")).to_have_count(min(calls, 50))
    page.fill("#calls-filters input[name=status]", "404")
    page.click("#calls-apply")
    expect(page.locator("#calls-table tbody tr")).to_have_count(1)
    expect(page.locator("#calls-table tbody tr")).to_contain_text("no-such-model")
    page.fill("#calls-filters input[name=status]", "")
    page.select_option("#calls-filters select[name=truncated]", "false")
    page.click("#calls-apply")
    expect(page.locator("#calls-table tbody tr")).to_have_count(calls - truncated)
    page.select_option("#calls-filters select[name=truncated]", "")
    page.fill("#calls-filters input[name=q]", "window.pwned")
    page.click("#calls-apply")
    expect(page.locator("#calls-table tbody tr")).to_have_count(1)
    page.click("#calls-table tbody tr")
    expect(page.locator("#call-detail")).to_be_visible()
    expect(page.locator("#call-prompt")).to_have_text(f"user: {HOSTILE}")
    assert page.locator("#call-detail img, #call-detail script").count() == 0
    assert page.evaluate("window.pwned") is None
    expect(page.locator("#call-fields tr[data-field=request_id] td")).to_have_text(
        site.hostile_request_id
    )
    expect(page.locator("#call-fields tr[data-field=model_requested] td")).to_have_text(
        "claude-haiku-4-5"
    )
    page.click("#replay-button")
    expect(page.locator("#replay-panel")).to_be_visible()
    expect(page.locator("#replay-id")).to_contain_text("status 200")
    assert (page.locator("#replay-answer").text_content() or "").strip()
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(artefacts / "calls.png"), full_page=True)
    replayed = (page.locator("#replay-id").text_content() or "").split(" ")[0]
    found = site.wait_for_calls(calls + 1)
    assert replayed in {record.request_id for record in found}

    # Rollouts: the canary at 50 %, rolled back to 0 % from the page.
    open_view(page, "rollouts")
    canary = page.locator("[data-route=support] tr[data-variant=canary]")
    expect(canary.locator(".weight")).to_have_text("50 %")
    page.screenshot(path=str(artefacts / "rollouts.png"), full_page=True)
    canary.locator("button.rollback").click()
    expect(canary.locator(".weight")).to_have_text("0 %")
    with site.admin() as admin:
        history = admin.get("/admin/config/versions").json()
    newest = history["versions"][0]
    assert history["serving"] == newest["id"]
    assert newest["source"] == "admin"
    assert "roll back support/canary" in newest["note"]
    canary.locator("input.promote-to").fill("20")
    canary.locator("button.promote").click()
    expect(canary.locator(".weight")).to_have_text("20 %")
    for name in ("overview", "budgets", "rollouts", "lifecycle", "evals", "calls"):
        assert (artefacts / f"{name}.png").stat().st_size > 0


def test_a_read_only_session_sees_the_views_with_its_actions_disabled(
    page: Page, site: Site
) -> None:
    sign_in(page, site, READ_TOKEN)
    expect(page.locator("#role")).to_have_text("read-only")
    open_view(page, "rollouts")
    expect(page.locator("button.rollback").first).to_be_disabled()
    open_view(page, "budgets")
    expect(page.locator("button.revoke").first).to_be_disabled()
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    answer = page.request.get(f"{site.url}/dashboard/api/overview")
    assert answer.status == 401


def test_the_page_refuses_to_run_injected_inline_script(browser: Browser, site: Site) -> None:
    """The CSP itself, in the browser: an inline script added to the page does not run."""
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    sign_in(page, site, READ_TOKEN)
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = 1'; document.body.append(s); }"
    )
    assert page.evaluate("window.injected") is None
    assert any("Content Security Policy" in text for text in violations)
    context.close()


def record_eval(site: Site) -> None:
    async def record() -> None:
        store = SQLiteEvalResultStore(site.ledger_path.parent / "keys.db")
        try:
            await store.record(
                [
                    EvalResult(
                        run_id="run-1",
                        created_at=datetime.now(UTC),
                        suite_name="support-suite",
                        suite_hash="abc123",
                        target="support@canary",
                        model="support",
                        variant="canary",
                        config_version="1",
                        passed=True,
                        pass_rate=0.95,
                        runs=20,
                        cost_per_case_usd=Decimal("0.0012"),
                        latency_p50_ms=10.0,
                        latency_p95_ms=20.0,
                        figures={},
                    )
                ]
            )
        finally:
            await store.aclose()

    run_apart(record())
