"""The console in a real headless Chromium: sign-in by one-time link (used once), the inbox
updated live by server-sent events, Approve waking the agent's long-poll, approvers limited to
their paths, CSRF refusals, the audit page with 1,000 events, the phone layout, and no secret
value in any page. Screenshots of the inbox at 375 px and 1280 px go to $ARTIFACTS."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from conftest import Daemon

VALUES: list[str] = []


def sign_in(browser: Browser, daemon: Daemon, approver: str | None = None, width: int = 1280) -> tuple[BrowserContext, Page]:
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    page.goto(daemon.link(approver))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/approvals")
    return ctx, page


def pending_lease(daemon: Daemon, path: str, reason: str = "rotate the nightly backup key") -> tuple[str, str, str]:
    """A tier-1 agent asks for a sensitive secret at `path`: (agent key, lease id, approval id)."""
    value = f"browser-secret-{uuid.uuid4().hex}"
    VALUES.append(value)
    daemon.ok("PUT", f"/v1/secrets/{path}", body={"value": value, "sensitivity": "sensitive"})
    name = f"agent-{uuid.uuid4().hex[:8]}"
    created = daemon.ok("POST", "/v1/agents", body={"name": name, "trust_tier": 1})
    daemon.ok("POST", "/v1/grants", body={"subject": {"kind": "agent", "value": created["agent"]["id"]}, "pattern": path, "actions": ["read"]})
    key = created["api_key"]
    lease = daemon.ok("POST", "/v1/leases", token=key, body={"path": f"/{path}", "reason": reason})
    assert lease["state"] == "pending", lease
    return key, lease["id"], lease["approval"]["id"]


def test_a_link_signs_in_once(browser: Browser, daemon: Daemon) -> None:
    url = daemon.link()
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(url)
    expect(page.get_by_text("the operator (admin)")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/ui/approvals")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # A second use, from another browser, is refused.
    other = browser.new_context()
    p2 = other.new_page()
    resp = p2.goto(url)
    assert resp is not None and resp.status == 409
    expect(p2.get_by_text("already used")).to_be_visible()
    # Signing out ends the session: the inbox sends the browser back to sign in.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(daemon.addr + "/ui/approvals")
    page.wait_for_url("**/ui/login")
    ctx.close()
    other.close()


def test_the_inbox_updates_live_and_approve_wakes_the_agent(browser: Browser, daemon: Daemon, artifacts: Path) -> None:
    ctx, page = sign_in(browser, daemon, "alice")
    key, lease, approval = pending_lease(daemon, "production/live/db")
    # No reload: the server-sent event refreshes the inbox.
    card = page.locator(f'[data-approval="{approval}"]')
    expect(card).to_be_visible(timeout=5000)
    expect(card.get_by_text("rotate the nightly backup key")).to_be_visible()
    expect(page.locator("#pending-count")).not_to_have_text("0")
    page.screenshot(path=str(artifacts / "inbox-1280.png"), full_page=True)
    # The agent long-polls while the approver taps Approve.
    answer: dict[str, Any] = {}

    def poll() -> None:
        answer["status"], answer["body"] = daemon.api("GET", f"/v1/leases/{lease}?wait=30", token=key)

    t = threading.Thread(target=poll)
    t.start()
    card.get_by_role("button", name="Approve").click()
    t.join(timeout=35)
    assert not t.is_alive()
    assert answer["status"] == 200 and answer["body"]["state"] == "active", answer
    expect(page.locator(f'#inbox [data-approval="{approval}"]')).to_have_count(0)
    # A decision taken elsewhere (here: the API, as chat or the CLI would) leaves the page within a second.
    _, _, other = pending_lease(daemon, "production/live/cache")
    expect(page.locator(f'[data-approval="{other}"]')).to_be_visible(timeout=5000)
    token = daemon.ok("POST", "/v1/approvers/alice/tokens")["token"]
    daemon.ok("POST", f"/v1/approvals/{other}/votes", token=token, body={"decision": "deny", "reason": "not now"})
    expect(page.locator(f'#inbox [data-approval="{other}"]')).to_have_count(0, timeout=1000)
    ctx.close()


def test_an_approver_outside_the_path_cannot_decide(browser: Browser, daemon: Daemon) -> None:
    _, lease, approval = pending_lease(daemon, "production/carol/key")
    ctx, page = sign_in(browser, daemon, "carol")
    expect(page.locator(f'[data-approval="{approval}"]')).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert csrf
    # A forged POST with carol's own session and CSRF token: 403, audited.
    resp = page.request.post(f"{daemon.addr}/ui/approvals/{approval}/vote", form={"csrf": csrf, "decision": "approve"})
    assert resp.status == 403
    rejected = [e for e in daemon.events("approval.vote_rejected") if e["details"]["approval_id"] == approval]
    assert len(rejected) == 1 and rejected[0]["actor_id"] == "carol"
    ctx.close()


def test_a_post_without_the_csrf_token_is_refused(browser: Browser, daemon: Daemon) -> None:
    key, lease, approval = pending_lease(daemon, "production/csrf/key")
    ctx, page = sign_in(browser, daemon, "alice")
    resp = page.request.post(f"{daemon.addr}/ui/approvals/{approval}/vote", form={"decision": "approve"})
    assert resp.status == 403
    assert daemon.api("GET", f"/v1/leases/{lease}", token=key)[1]["state"] == "pending"
    ctx.close()


def test_the_audit_page_filters_and_charts_1000_events(browser: Browser, daemon: Daemon) -> None:
    prefix = f"bulk-{uuid.uuid4().hex[:6]}"
    for i in range(1000):
        daemon.ok("PUT", f"/v1/secrets/{prefix}/s{i % 50}", body={"value": f"bulk-value-{i}"})
    ctx, page = sign_in(browser, daemon)
    page.goto(f"{daemon.addr}/ui/audit?event=secret.*&path={prefix}/")
    expect(page.get_by_role("heading", name="1000 events")).to_be_visible()
    assert page.locator("figure.chart svg rect").count() >= 1
    expect(page.locator("#chain-status")).to_have_attribute("data-ok", "true", timeout=10000)
    rows = page.locator("table.events tbody tr")
    assert rows.count() == 100
    expect(rows.first).to_contain_text(prefix)
    # The next page follows the API's cursor.
    page.get_by_role("link", name="Next page →").click()
    expect(page.locator("table.events tbody tr").first).to_contain_text(prefix)
    # Filter by the form.
    page.goto(f"{daemon.addr}/ui/audit")
    page.fill('input[name="path"]', f"{prefix}/s7")
    page.fill('input[name="event"]', "secret.created")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="1 events")).to_be_visible()
    ctx.close()


def test_the_inbox_fits_a_phone(browser: Browser, daemon: Daemon, artifacts: Path) -> None:
    pending_lease(daemon, "production/phone/key", reason="deploy from the phone")
    ctx, page = sign_in(browser, daemon, "alice", width=375)
    approve = page.get_by_role("button", name="Approve").first
    expect(approve).to_be_visible()
    box = approve.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 100, box
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 375, overflow
    page.screenshot(path=str(artifacts / "inbox-375.png"), full_page=True)
    ctx.close()


def test_no_page_shows_a_secret_value(browser: Browser, daemon: Daemon) -> None:
    pending_lease(daemon, "production/values/key")
    ctx, page = sign_in(browser, daemon)
    for path in ["/ui/approvals", "/ui/approvals?state=denied", "/ui/audit", "/ui/secrets", "/ui/agents", "/ui/webhooks"]:
        page.goto(daemon.addr + path)
        html = page.content()
        for v in VALUES:
            assert v not in html, f"{path} shows a secret value"
        assert "bulk-value-" not in html, path
    ctx.close()
