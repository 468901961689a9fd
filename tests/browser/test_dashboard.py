"""The dashboard (``/ui``) in a real browser: Playwright driving Debian's Chromium against
the session's controller, workers, lab devices and receivers (a stack of this module's own
where a test changes shared state: draining a node).

Every wait is Playwright's ``expect``, which waits for a condition on the page, or a bounded
wait for a condition on the system; nothing sleeps. One browser for the module, one context
(its own cookies) per login. With ``NETPULSE_DASHBOARD_SCREENSHOTS=1`` the tests also save
the screenshots of ``docs/dashboard.md`` into ``docs/images/``.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from redis import Redis

from netpulse.nodes.directory import NodeDirectory
from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY
from tests.integration.helpers import (
    device,
    run,
    ssh_args,
    submit,
    unreachable_job,
    wait_job,
    wait_started,
)
from tests.support import processes
from tests.support.receiver import Receiver
from tests.support.stack import Stack

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
SCREENSHOTS = os.environ.get("NETPULSE_DASHBOARD_SCREENSHOTS") == "1"
#: Lists and panels refresh every 2 s: a change shows within one refresh and a request.
LIVE = 15_000

Login = Callable[..., Page]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def login(browser: Browser, controller_url: str) -> Iterator[Login]:
    """Log in with a key in a fresh context (cookies of its own); the page is on /ui/jobs."""
    contexts: list[BrowserContext] = []

    def open_page(key: str = API_KEY, url: str = controller_url) -> Page:
        context = browser.new_context(base_url=url, viewport={"width": 1360, "height": 860})
        contexts.append(context)
        page = context.new_page()
        page.goto("/ui/login")
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/ui/jobs$"))
        return page

    yield open_page
    for context in contexts:
        context.close()


def shot(page: Page, name: str, full_page: bool = False) -> None:
    """Save the page for docs/dashboard.md (only when asked: the images are committed)."""
    if SCREENSHOTS:
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(IMAGES / f"dashboard-{name}.png"), full_page=full_page)


def paramiko(sshd: Any, command: str, **extra: Any) -> dict[str, Any]:
    return {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": command, **extra}


def test_a_wrong_key_is_refused_and_the_right_one_logs_in(
    browser: Browser, controller_url: str
) -> None:
    context = browser.new_context(base_url=controller_url, viewport={"width": 1360, "height": 860})
    try:
        page = context.new_page()
        page.goto("/ui/jobs")
        expect(page).to_have_url(re.compile(r"/ui/login$"))  # no session: the login form
        page.fill("#api_key", "npk_not-a-key-of-this-server")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("not valid")
        assert context.cookies() == []
        shot(page, "login")
        page.fill("#api_key", API_KEY)
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/ui/jobs$"))
        expect(page.locator("#who")).to_contain_text("default")
        [cookie] = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
        assert API_KEY not in cookie["value"]
        page.click("text=Log out")
        expect(page).to_have_url(re.compile(r"/ui/login$"))
        page.goto("/ui/jobs")
        expect(page).to_have_url(re.compile(r"/ui/login$"))  # the session is gone
    finally:
        context.close()


def seed_for_screenshots(system: httpx.Client, sshd: Any, lab: dict[str, Any]) -> None:
    """A few finished and failed jobs, so the screenshots show more than one row."""
    ios = device(lab, "cisco_ios")
    for body in (
        {"driver": "netmiko", "connection_args": ios.connection_args(), "command": "show clock"},
        unreachable_job(free_port(), queue_strategy="fifo"),
        paramiko(sshd, "uname -sr"),
        paramiko(sshd, "false"),
    ):
        run(system, body)


def test_a_new_job_appears_and_finishes_live_then_shows_its_output(
    system: httpx.Client, sshd: Any, lab: dict[str, Any], login: Login
) -> None:
    if SCREENSHOTS:
        seed_for_screenshots(system, sshd, lab)
    page = login()
    page.evaluate("window.notReloaded = true")
    marker = f"dashboard-{uuid.uuid4().hex[:8]}"
    job = submit(system, paramiko(sshd, f"sleep 4; echo {marker}"))
    row = page.locator(f"#job-{job['id']}")
    expect(row).to_be_visible(timeout=LIVE)
    expect(row).to_have_attribute("data-status", re.compile("^(queued|started)$"))
    expect(row).to_have_attribute("data-status", "finished", timeout=LIVE)
    assert page.evaluate("window.notReloaded") is True  # the list changed in place
    expect(row).to_contain_text("default")  # submitted_by
    shot(page, "jobs")
    row.locator("a").click()
    expect(page.locator("#job-status")).to_have_text("finished")
    expect(page.locator("pre.output").first).to_contain_text(marker)
    expect(page.locator("ol.commands")).to_contain_text(f"echo {marker}")


def test_a_jobs_page_shows_parsed_data_and_the_device_its_session(
    system: httpx.Client, lab: dict[str, Any], login: Login
) -> None:
    ios = device(lab, "cisco_ios")
    body = {
        "driver": "netmiko",
        "connection_args": ios.connection_args(),
        "command": "show version",
        "enable_mode": True,
        "parsing": {"name": "textfsm"},
    }
    job = run(system, body)
    assert job["status"] == "finished", job
    page = login()
    page.goto(f"/ui/jobs/{job['id']}")
    expect(page.locator("pre.parsed")).to_contain_text('"version"')
    expect(page.locator("pre.output")).to_contain_text("Cisco IOS")
    shot(page, "job", full_page=True)
    page.goto("/ui/devices")
    row = page.locator(f"tr.device[data-device='{ios.host}:{ios.port}']")
    expect(row).to_contain_text("alive")
    expect(row).to_contain_text(job["id"][:8])
    shot(page, "devices")


def test_a_failed_delivery_is_redelivered_from_its_page(
    system: httpx.Client, sshd: Any, receiver: Receiver, login: Login
) -> None:
    receiver.behave("/dashboard-hook", statuses=[500, 200])
    webhook = {"url": receiver.url("/dashboard-hook"), "max_retries": 0}
    job = run(system, paramiko(sshd, "echo delivered", webhook=webhook))
    page = login()
    page.goto("/ui/deliveries?status=failed")
    row = page.locator(f"tr.delivery[data-job='{job['id']}']")
    expect(row).to_be_visible(timeout=LIVE)  # the attempt failed; the list refreshes itself
    shot(page, "deliveries")
    row.locator("a").first.click()
    expect(page.locator("#delivery-state")).to_have_text("failed")
    expect(page.locator("tr.attempt")).to_have_count(1)
    expect(page.locator("tr.attempt[data-attempt='1'] td").nth(2)).to_have_text("500")
    page.click("#redeliver")
    expect(page.locator("#delivery-state")).to_have_text("succeeded", timeout=LIVE)
    expect(page.locator("tr.attempt")).to_have_count(2)
    expect(page.locator("tr.attempt[data-attempt='2'] td").nth(2)).to_have_text("200")
    first, second = receiver.wait_for("/dashboard-hook", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    shot(page, "delivery", full_page=True)


def test_recover_since_redelivers_failed_deliveries(
    system: httpx.Client, sshd: Any, receiver: Receiver, login: Login
) -> None:
    receiver.behave("/dashboard-recover", statuses=[500, 200])
    webhook = {"url": receiver.url("/dashboard-recover"), "max_retries": 0}
    # Only this test's delivery: the session's other failed deliveries are left alone.
    since = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    job = run(system, paramiko(sshd, "true", webhook=webhook))
    page = login()
    page.goto(f"/ui/jobs/{job['id']}")
    delivery = page.locator("article.delivery")
    expect(delivery.locator(".status")).to_have_text("failed", timeout=LIVE)
    page.goto("/ui/deliveries")
    page.fill("input[name=since]", "yesterday")
    page.click("#recover")
    expect(page.locator("#flash")).to_contain_text("since must be a time with a zone")
    page.fill("input[name=since]", since)
    page.click("#recover")
    expect(page.locator("#flash")).to_contain_text(re.compile(r"Redelivered [1-9]\d* failed"))
    receiver.wait_for("/dashboard-recover", 2)
    page.goto(f"/ui/jobs/{job['id']}")
    expect(delivery.locator(".status")).to_have_text("succeeded", timeout=LIVE)


def test_a_read_only_key_cannot_cancel_and_a_post_without_the_csrf_token_is_refused(
    system: httpx.Client, sshd: Any, login: Login
) -> None:
    job = submit(system, paramiko(sshd, "sleep 30"))
    wait_started(system, job["id"])
    name = f"ui-reader-{uuid.uuid4().hex[:6]}"
    made = system.post("/keys", json={"name": name, "scopes": ["read"]})
    assert made.status_code == 201, made.text
    try:
        reader = login(made.json()["key"])
        expect(reader.locator("#who")).to_contain_text(f"{name} (read)")
        reader.goto(f"/ui/jobs/{job['id']}")
        expect(reader.locator("#job-status")).to_have_text("started")
        reader.click("#cancel")
        expect(reader.locator("#flash")).to_contain_text(
            f"the API key '{name}' lacks the 'exec' scope that cancelling a job needs"
        )
        reader.goto("/ui/audit")
        expect(reader.locator(".flash.error")).to_contain_text("lacks the 'audit' scope")

        admin = login()
        admin.select_option("select[name=status]", "started")
        admin.click("button:has-text('Filter')")
        expect(admin.locator(f"#job-{job['id']}")).to_be_visible()
        expect(admin.locator("tr[data-status]:not([data-status='started'])")).to_have_count(0)
        admin.goto(f"/ui/jobs?key={name}")  # the reader submitted nothing
        expect(admin.locator("#job-rows")).to_contain_text("No job matches.")
        expect(admin.locator("p.note")).to_contain_text("among the newest 400 of each queue")
        admin.goto(f"/ui/jobs/{job['id']}")
        cancel = f"/ui/jobs/{job['id']}/cancel"
        # A script of the page itself, with the session's cookie but without the token:
        without = admin.evaluate(
            "async (url) => { const r = await fetch(url, {method: 'POST'}); "
            "return [r.status, await r.text()]; }",
            cancel,
        )
        assert without[0] == 403 and "CSRF token is missing or wrong" in without[1]
        wrong = admin.evaluate(
            "async (url) => (await fetch(url, {method: 'POST', headers: "
            "{'X-CSRF-Token': 'not-the-token'}})).status",
            cancel,
        )
        assert wrong == 403
        assert system.get(f"/jobs/{job['id']}").json()["status"] == "started"

        admin.click("#cancel")  # the admin's own button carries the token
        expect(admin.locator("#flash")).to_contain_text("cancel requested")
        expect(admin.locator("#job-status")).to_have_text("stopped", timeout=LIVE)
        assert wait_job(system, job["id"])["status"] == "stopped"

        revoked = system.delete(f"/keys/{name}")
        assert revoked.status_code == 204
        reader.goto("/ui/jobs")
        expect(reader).to_have_url(re.compile(r"/ui/login$"))  # the session ended with its key
    finally:
        system.delete(f"/keys/{name}")
        system.delete(f"/jobs/{job['id']}")


def test_search_the_audit_trail(system: httpx.Client, sshd: Any, login: Login) -> None:
    marker = f"audit-{uuid.uuid4().hex[:10]}"
    job = run(system, paramiko(sshd, f"echo {marker}"))
    processes.wait_until(
        lambda: any(
            e["job_id"] == job["id"] and e["status"] == "finished"
            for e in system.get("/audit", params={"q": marker}).json()["items"]
        ),
        30,
        "the job's end in the audit trail",
    )
    page = login()
    page.goto("/ui/audit")
    page.fill("input[name=q]", marker)
    page.click("#audit-search")
    rows = page.locator("tr.audit-entry")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job", job["id"])
    expect(rows.first).to_contain_text("default")
    shot(page, "audit")
    rows.first.locator("a").click()
    expect(page.locator("pre.output")).to_contain_text(marker)
    page.goto("/ui/audit?since=yesterday")
    expect(page.locator(".flash.error")).to_contain_text("since")


# -- a stack of this module's own: draining changes which node holds which device -------------


@pytest.fixture(scope="module")
def own_stack(
    netpulse_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A controller and two worker nodes on a Redis of their own (no FIFO pool, no delivery
    service: the nodes and endpoints pages need neither)."""
    stack = Stack(netpulse_env, tmp_path_factory.mktemp("dashboard-stack"), node_name="ui-a")
    try:
        stack.start_redis()
        stack.start("controller")
        stack.start("node")
        stack.procs["node-b"] = processes.start(
            ["worker", "node", "--name", "ui-b", "--threads", "2"], stack.env, stack.log("node-b")
        )
        conn: Redis = stack.redis
        processes.wait_until(lambda: processes.http_ready(stack.url), 60, "the controller")
        processes.wait_until(
            lambda: {n.name for n in NodeDirectory(conn).nodes() if n.alive} >= {"ui-a", "ui-b"},
            60,
            "both nodes",
        )
        yield stack
    finally:
        stack.stop()


def test_draining_a_node_from_the_page_moves_its_devices(
    own_stack: Stack, lab: dict[str, Any], login: Login
) -> None:
    ios = device(lab, "cisco_ios")
    with own_stack.client() as api:
        job = run(
            api,
            {
                "driver": "netmiko",
                "connection_args": ios.connection_args(),
                "command": "show clock",
            },
        )
    assert job["status"] == "finished", job
    holder = job["queue"].removeprefix("NodeQ_")
    other = ({"ui-a", "ui-b"} - {holder}).pop()
    page = login(url=own_stack.url)
    page.goto("/ui/workers")
    expect(page.locator(f"tr.node[data-node='{holder}']")).to_contain_text("alive")
    shot(page, "workers")
    page.on("dialog", lambda dialog: dialog.accept())  # "Drain node ...?"
    page.locator(f"tr.node[data-node='{holder}'] button").click()
    expect(page.locator("#flash")).to_contain_text(f"Node {holder} is draining")
    expect(page.locator("#flash")).to_contain_text(f"{ios.host}:{ios.port} → {other}")
    # The other node is now the only live one: draining it is refused with the API's sentence.
    page.locator(f"tr.node[data-node='{other}'] button").click()
    expect(page.locator("#flash")).to_contain_text(f"node {other} is the only live node")
    page.goto("/ui/devices")
    row = page.locator(f"tr.device[data-device='{ios.host}:{ios.port}']")
    expect(row).to_have_attribute("data-node", other)


def test_endpoints_are_listed_with_their_health(own_stack: Stack, login: Login) -> None:
    with own_stack.client() as api:
        for spec in (
            {"id": "ui-chat", "url": "http://127.0.0.1:9/chat", "event_types": ["job.failed"]},
            {"id": "ui-audit", "url": "http://127.0.0.1:9/audit", "hosts": ["core-*"]},
        ):
            assert api.post("/webhooks/endpoints", json=spec).status_code == 201
        assert api.patch("/webhooks/endpoints/ui-audit", json={"enabled": False}).is_success
    page = login(url=own_stack.url)
    page.goto("/ui/endpoints")
    expect(page.locator("#endpoint-ui-chat")).to_contain_text("healthy")
    expect(page.locator("#endpoint-ui-chat")).to_contain_text("job.failed")
    expect(page.locator("#endpoint-ui-audit")).to_contain_text("disabled by an operator")
    expect(page.locator("#endpoint-ui-audit")).to_contain_text("core-*")
    shot(page, "endpoints")
