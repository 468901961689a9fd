"""Webhook endpoints: standing subscriptions with filters, fanned out as deliveries of their
own; payload templates; health (disabled after failures, held events, replay, recovered);
rate limits shared by two delivery processes; settings-file endpoints.

A stack of their own (Redis, controller, workers, delivery service): an endpoint subscribed
to everything would otherwise receive every other test's events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from netpulse.models.events import EVENT_TYPES
from netpulse.webhooks.signing import generate_secret
from tests.integration.helpers import run, ssh_args
from tests.integration.test_secrets_at_rest import readable_forms, values_of
from tests.support import processes
from tests.support.delivery import request_with_webhook
from tests.support.docs import doc_template
from tests.support.receiver import Receiver
from tests.support.stack import Stack

OTHER_SECRET = "whsec_" + base64.b64encode(b"the-second-delivery-process!").decode()


@pytest.fixture(scope="module")
def ops() -> Iterator[Receiver]:
    """The operator's receiver (the settings file's notification endpoint)."""
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(
    netpulse_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, ops: Receiver
) -> Iterator[Stack]:
    settings_endpoints = [
        {"id": "ops", "url": ops.url("/ops"), "event_types": ["endpoint.*"]},
        {"id": "gitops-off", "url": ops.url("/off"), "enabled": False},
    ]
    env = {
        **netpulse_env,
        "NETPULSE_WEBHOOKS__ENDPOINTS": json.dumps(settings_endpoints),
        "NETPULSE_WEBHOOKS__NOTIFY_ENDPOINT": "ops",
        "NETPULSE_WEBHOOKS__ENDPOINT_DISABLE_AFTER_FAILED_DELIVERIES": "2",
    }
    with Stack(env, tmp_path_factory.mktemp("endpoints")) as system:
        yield system


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client


@pytest.fixture
def endpoints(api: httpx.Client) -> Iterator[list[str]]:
    """Ids of the endpoints a test creates; deleted after it, so tests do not mix."""
    made: list[str] = []
    yield made
    for endpoint_id in made:
        api.delete(f"/webhooks/endpoints/{endpoint_id}")


def _create(api: httpx.Client, made: list[str], **spec: Any) -> dict[str, Any]:
    reply = api.post("/webhooks/endpoints", json=spec)
    assert reply.status_code == 201, reply.text
    made.append(reply.json()["id"])
    return reply.json()


def _job(api: httpx.Client, sshd: Any, command: str, **extra: Any) -> dict[str, Any]:
    body = {"driver": "paramiko", "connection_args": ssh_args(sshd), "command": command, **extra}
    return run(api, body)


def test_endpoints_are_created_listed_changed_and_deleted_without_showing_secrets(
    api: httpx.Client, endpoints: list[str], ops: Receiver
) -> None:
    made = _create(
        api,
        endpoints,
        url=ops.url("/crud"),
        headers={"Authorization": "Bearer very-secret-token"},
        auth=["hook", "hook-password"],
        secret="whsec_" + base64.b64encode(b"endpoint-secret-0123456789").decode(),
        event_types=["job.failed", "detached.*"],
        hosts=["10.1.*"],
        description="failures of the lab",
    )
    assert made["id"].startswith("ep_") and made["source"] == "api" and made["enabled"]
    assert made["headers"] == ["Authorization"] and made["auth_username"] == "hook"
    assert made["has_secret"] is True
    text = json.dumps(api.get("/webhooks/endpoints").json())
    for secret in ("very-secret-token", "hook-password", "endpoint-secret"):
        assert secret not in text
    assert made["id"] in text and '"ops"' in text  # the settings file's are listed too

    changed = api.patch(f"/webhooks/endpoints/{made['id']}", json={"hosts": ["10.2.*"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["hosts"] == ["10.2.*"] and changed.json()["has_secret"] is True

    bad_type = api.post("/webhooks/endpoints", json={"url": ops.url(), "event_types": ["job.x"]})
    assert bad_type.status_code == 422 and "unknown event type 'job.x'" in bad_type.text
    bad_patch = api.patch(f"/webhooks/endpoints/{made['id']}", json={"max_per_second": -1})
    assert bad_patch.status_code == 422 and "max_per_second" in bad_patch.text
    assert api.get(f"/webhooks/endpoints/{made['id']}").json()["hosts"] == ["10.2.*"]

    gitops = api.patch("/webhooks/endpoints/ops", json={"url": ops.url("/elsewhere")})
    assert gitops.status_code == 409 and "settings file" in gitops.json()["detail"]
    assert api.delete("/webhooks/endpoints/ops").status_code == 409

    assert api.delete(f"/webhooks/endpoints/{made['id']}").status_code == 204
    endpoints.remove(made["id"])
    assert api.get(f"/webhooks/endpoints/{made['id']}").status_code == 404


def test_event_types_are_listed_with_the_schema_of_their_payload(api: httpx.Client) -> None:
    listed = api.get("/webhooks/event-types").json()
    assert [t["type"] for t in listed] == list(EVENT_TYPES)
    for entry in listed:
        model = EVENT_TYPES[entry["type"]][0]
        assert entry["schema"] == model.model_json_schema()
        model.model_validate(entry["sample"])  # the sample is what the schema says


def test_an_event_fans_out_to_each_matching_endpoint_as_its_own_delivery(
    api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    tag = uuid.uuid4().hex[:8]
    every = _create(api, endpoints, url=ops.url(f"/every-{tag}"))
    by_host = _create(api, endpoints, url=ops.url(f"/host-{tag}"), hosts=["127.0.0.*"])
    quiet = _create(api, endpoints, url=ops.url(f"/quiet-{tag}"), include_output=False)
    _create(api, endpoints, url=ops.url(f"/failed-{tag}"), event_types=["job.failed"])
    _create(api, endpoints, url=ops.url(f"/other-host-{tag}"), hosts=["10.*"])
    _create(api, endpoints, url=ops.url(f"/other-key-{tag}"), submitted_by=["nobody"])
    _create(api, endpoints, url=ops.url(f"/pinned-{tag}"), strategies=["pinned"])

    # The output (the tag reversed) is not in the command line, which every payload names.
    job = _job(api, sshd, f"echo {tag} | rev", webhook={"url": ops.url(f"/own-{tag}")})
    assert job["status"] == "finished", job
    got = {
        path: ops.wait_for(f"/{path}-{tag}", timeout=30)
        for path in ("own", "every", "host", "quiet")
    }
    ids = {items[0].headers["webhook-id"] for items in got.values()}
    assert len(ids) == 4  # each destination its own webhook-id
    for path, items in got.items():
        event = items[0].json()
        assert event["id"] == job["id"] and event["event_type"] == "job.completed"
        EVENT_TYPES["job.completed"][0].model_validate(event)
        if path == "quiet":
            assert tag[::-1] not in items[0].body.decode()
            assert event["result"]["retval"] == [{"command": f"echo {tag} | rev", "exit_status": 0}]
            assert event["job_url"] == f"/jobs/{job['id']}"
        else:
            assert tag[::-1] in event["result"]["retval"][0]["stdout"]
    # The job's delivery log lists the endpoint deliveries too.
    listed = api.get(f"/jobs/{job['id']}/webhook-deliveries").json()
    assert {d["endpoint_id"] for d in listed} == {None, every["id"], by_host["id"], quiet["id"]}
    # Nothing reached the endpoints whose filters do not match (their deliveries would
    # have been made with the others, in one transaction).
    for path in ("failed", "other-host", "other-key", "pinned"):
        assert ops.on(f"/{path}-{tag}") == []


def test_job_started_goes_to_an_endpoint_that_asks_for_it(
    api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    tag = uuid.uuid4().hex[:8]
    _create(api, endpoints, url=ops.url(f"/started-{tag}"), event_types=["job.*"])
    job = _job(api, sshd, f"echo started-{tag}")
    got = ops.wait_for(f"/started-{tag}", count=2, timeout=30)
    assert [g.json()["event_type"] for g in got] == ["job.started", "job.completed"]
    assert all(g.json()["id"] == job["id"] for g in got)


def test_a_template_shapes_the_body_and_a_bad_one_is_refused_at_creation(
    api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    tag = uuid.uuid4().hex[:8]
    _create(api, endpoints, url=ops.url(f"/slack-{tag}"), template=doc_template("Slack"))
    _create(api, endpoints, url=ops.url(f"/teams-{tag}"), template=doc_template("Microsoft Teams"))
    _create(
        api,
        endpoints,
        url=ops.url(f"/text-{tag}"),
        template="{{ event_type }} {{ id }}",
        content_type="text/plain; charset=utf-8",
    )
    job = _job(api, sshd, f"echo slack-{tag}")
    [slack] = ops.wait_for(f"/slack-{tag}", timeout=30)
    message = slack.json()
    assert message["text"] == "NetPulse job.completed: finished on 127.0.0.1"
    assert (
        message["blocks"][0]["text"]["text"] == f"*job.completed* on `127.0.0.1`\necho slack-{tag}"
    )
    assert slack.headers["content-type"] == "application/json"
    [teams] = ops.wait_for(f"/teams-{tag}", timeout=30)
    card = teams.json()["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts == {
        "Device": "127.0.0.1",
        "Status": "finished",
        "Command": f"echo slack-{tag}",
        "Job": job["id"],
    }
    [text] = ops.wait_for(f"/text-{tag}", timeout=30)
    assert text.body.decode() == f"job.completed {job['id']}"
    assert text.headers["content-type"] == "text/plain; charset=utf-8"

    refused = api.post(
        "/webhooks/endpoints", json={"url": ops.url(), "template": "{{ no_such_field }}"}
    )
    assert refused.status_code == 422
    assert "undefined variable 'no_such_field'" in refused.json()["detail"]
    assert "sample job.completed event" in refused.json()["detail"]
    syntax = api.post("/webhooks/endpoints", json={"url": ops.url(), "template": "{% if %}"})
    assert syntax.status_code == 422 and "syntax" in syntax.json()["detail"]
    on_request = api.post(
        "/device/exec",
        json={
            "driver": "paramiko",
            "connection_args": ssh_args(sshd),
            "command": "true",
            "webhook": {"url": ops.url(), "template": "{{ result.nope }}"},
        },
    )
    assert on_request.status_code == 422 and "webhook.template" in on_request.json()["detail"]


def test_a_template_that_fails_at_send_time_is_a_failed_attempt_with_its_error(
    api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    tag = uuid.uuid4().hex[:8]
    # Renders for the samples (device_name "core-1"); divides by zero for a device named
    # "127.0.0.1" (a job's device name defaults to its host).
    endpoint = _create(
        api,
        endpoints,
        url=ops.url(f"/late-{tag}"),
        event_types=["job.completed"],
        template="{{ 1 / (9 - (device_name | length)) }}",
    )
    job = _job(api, sshd, f"echo late-{tag}")
    deadline = time.monotonic() + 30
    while True:
        log = [
            d
            for d in api.get("/webhooks/deliveries", params={"status": "failed"}).json()
            if d["job_id"] == job["id"] and d["endpoint_id"] == endpoint["id"]
        ]
        if log or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert log, "the delivery did not fail"
    assert "payload template failed" in log[0]["last_error"]
    assert ops.on(f"/late-{tag}") == []  # never the default body instead


def test_an_endpoint_that_keeps_failing_is_disabled_holds_its_events_and_comes_back(
    api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    with Receiver() as flaky:
        flaky.behave("/down", statuses=[500])
        endpoint = _create(
            api, endpoints, url=flaky.url("/down"), max_retries=0, event_types=["job.completed"]
        )
        first = _job(api, sshd, "echo one")
        second = _job(api, sshd, "echo two")
        [notice] = ops.wait_for("/ops", timeout=30)
        event = notice.json()
        assert event["event_type"] == "endpoint.disabled"
        assert event["endpoint_id"] == endpoint["id"]
        assert event["reason"] == "its last 2 deliveries failed"
        EVENT_TYPES["endpoint.disabled"][0].model_validate(event)
        state = api.get(f"/webhooks/endpoints/{endpoint['id']}").json()
        assert state["enabled"] is False and state["health"]["failed_deliveries"] == 2

        held = [_job(api, sshd, f"echo held-{n}") for n in range(3)]
        tries_before = len(flaky.on("/down"))
        deadline = time.monotonic() + 30
        while api.get(f"/webhooks/endpoints/{endpoint['id']}").json()["health"]["held"] < 3:
            assert time.monotonic() < deadline, "the events were not held"
            time.sleep(0.1)
        held_log = api.get("/webhooks/deliveries", params={"status": "held"}).json()
        assert {d["job_id"] for d in held_log} >= {j["id"] for j in held}
        assert len(flaky.on("/down")) == tries_before  # held events are not attempted

        flaky.behave("/down", statuses=[200])
        enabled = api.patch(
            f"/webhooks/endpoints/{endpoint['id']}", json={"enabled": True, "replay_held": True}
        )
        assert enabled.status_code == 200 and enabled.json()["enabled"] is True
        got = flaky.wait_for("/down", count=tries_before + 3, timeout=30)
        replayed = {g.json()["id"] for g in got[tries_before:]}
        assert replayed == {j["id"] for j in held}
        [_, recovered] = ops.wait_for("/ops", count=2, timeout=30)
        assert recovered.json()["event_type"] == "endpoint.recovered"
        assert recovered.json()["endpoint_id"] == endpoint["id"]
        assert api.get(f"/webhooks/endpoints/{endpoint['id']}").json()["health"]["held"] == 0
        assert {first["id"], second["id"]}.isdisjoint(replayed)


def test_held_events_not_replayed_are_failed_and_stay_redeliverable(
    api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    tag = uuid.uuid4().hex[:8]
    endpoint = _create(api, endpoints, url=ops.url(f"/paused-{tag}"), enabled=False)
    job = _job(api, sshd, f"echo paused-{tag}")
    deadline = time.monotonic() + 30
    while api.get(f"/webhooks/endpoints/{endpoint['id']}").json()["health"]["held"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    api.patch(f"/webhooks/endpoints/{endpoint['id']}", json={"enabled": True})
    [delivery] = [
        d
        for d in api.get("/webhooks/deliveries", params={"status": "failed"}).json()
        if d["job_id"] == job["id"] and d["endpoint_id"] == endpoint["id"]
    ]
    assert "not replayed" in delivery["last_error"]
    assert api.post(f"/webhooks/deliveries/{delivery['id']}/redeliver").status_code == 202
    [got] = ops.wait_for(f"/paused-{tag}", timeout=30)
    assert got.json()["id"] == job["id"]


def test_a_settings_endpoint_turned_off_gets_nothing(
    api: httpx.Client, sshd: Any, ops: Receiver
) -> None:
    listed = {e["id"]: e for e in api.get("/webhooks/endpoints").json()}
    assert listed["gitops-off"]["source"] == "settings"
    _job(api, sshd, "echo off")
    assert ops.on("/off") == []


def _signed_with(secret: str, got: Any) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{got.headers['webhook-id']}.{got.headers['webhook-timestamp']}.".encode()
    mac = base64.b64encode(hmac.new(key, content + got.body, hashlib.sha256).digest()).decode()
    return f"v1,{mac}" in got.headers["webhook-signature"].split()


def test_max_per_second_holds_across_two_delivery_processes(
    stack: Stack, api: httpx.Client, endpoints: list[str], netpulse_env: dict[str, str]
) -> None:
    from netpulse.webhooks.outbox.record import record_final_event

    with Receiver() as slow:
        second = processes.start(
            ["worker", "webhooks"],
            {**stack.env, "NETPULSE_WEBHOOKS__SIGNING_SECRET": OTHER_SECRET},
            stack.root / "webhooks-2.log",
        )
        try:
            _create(api, endpoints, url=slow.url("/rated"), max_per_second=4)
            conn = stack.redis
            req = request_with_webhook({"url": slow.url("/unused")}).model_copy(
                update={"webhook": None}
            )
            count = 16
            now = datetime.now(UTC)
            for _ in range(count):
                record_final_event(
                    conn,
                    job_id=str(uuid.uuid4()),
                    req=req,
                    status="finished",
                    meta={"host": "127.0.0.1", "command": ["true"]},
                    created_at=now,
                    started_at=now,
                    ended_at=now,
                    retval=[],
                    error=None,
                )
            got = slow.wait_for("/rated", count=count, timeout=60)
        finally:
            processes.stop(second)
    arrivals = sorted(g.at for g in got)
    # 4 per second: the sends start at reserved slots 0.25 s apart and never before their
    # slot, though one may start a little after it (the first opens the connection). So the
    # last 15 span at least 3.5 s, and no 1-second window holds more than 5 arrivals.
    assert arrivals[-1] - arrivals[1] >= (count - 2) / 4 - 0.05, arrivals
    assert all(arrivals[i + 5] - arrivals[i] >= 1.0 for i in range(count - 5)), arrivals
    signers = {
        "first" if _signed_with(netpulse_env["NETPULSE_WEBHOOKS__SIGNING_SECRET"], g) else "second"
        for g in got
    }
    assert signers == {"first", "second"}  # both processes sent, and shared the limit
    assert len({g.headers["webhook-id"] for g in got}) == count


def test_endpoint_filters_are_checked_when_stored(api: httpx.Client, ops: Receiver) -> None:
    for body, words in (
        ({"url": ops.url(), "strategies": ["sideways"]}, "strategies"),
        ({"url": ops.url(), "events": ["job.started"]}, "event_types"),
        ({"url": ops.url(), "id": "bad id!"}, "endpoint id"),
        ({"url": "ftp://example.com/x"}, "url"),
    ):
        reply = api.post("/webhooks/endpoints", json=body)
        assert reply.status_code == 422, (body, reply.text)
        assert words in reply.text, (body, reply.text)
    taken = api.post("/webhooks/endpoints", json={"url": ops.url(), "id": "ops"})
    assert taken.status_code == 409


def test_an_endpoint_sends_its_secrets_and_redis_holds_none_readable(
    stack: Stack, api: httpx.Client, endpoints: list[str], sshd: Any, ops: Receiver
) -> None:
    token = uuid.uuid4().hex[:10]
    signing_secret = generate_secret()
    _create(
        api,
        endpoints,
        url=ops.url(f"/sealed-{token}"),
        headers={"X-Api-Token": f"hdr-{token}"},
        auth=["hook", f"basic-{token}"],
        secret=signing_secret,
    )
    _job(api, sshd, f"echo sealed-{token}")
    [got] = ops.wait_for(f"/sealed-{token}", timeout=30)
    assert got.headers["x-api-token"] == f"hdr-{token}"
    Webhook(signing_secret).verify(got.body, dict(got.headers))  # an independent verifier
    conn = stack.redis
    stored = [
        blob
        for key in conn.scan_iter(count=1000)
        for raw in values_of(conn, key)
        for blob in readable_forms(raw)
    ]
    for value in (f"hdr-{token}", f"basic-{token}", signing_secret.removeprefix("whsec_")):
        assert not any(value.encode() in blob for blob in stored), f"{value!r} in Redis"
