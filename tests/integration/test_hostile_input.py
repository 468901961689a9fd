"""Input a careless or hostile client sends: every answer is a 4xx a person can read, nothing
is queued, and nothing already stored breaks (issue 10, first part)."""

from __future__ import annotations

import json
from urllib.parse import quote, unquote

import httpx
import pytest
from redis import Redis

from netpulse.storage import files

BASE_JOB = {
    "driver": "paramiko",
    "queue_strategy": "fifo",
    "connection_args": {"host": "127.0.0.1", "port": 1, "username": "u", "password": "p"},
    "command": "true",
}


def queued_ids(api: httpx.Client) -> set[str]:
    """The ids of every job the API lists now. Compared as sets: older jobs expire (their
    result_ttl) while a test runs, so a count could drop although nothing was queued."""
    return {job["id"] for job in api.get("/jobs", params={"limit": 10000}).json()}


@pytest.mark.parametrize(
    "header",
    [
        "Content-Length",
        "transfer-encoding",
        "Connection",
        "Host",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "webhook-signature",
        "Webhook-Id",
    ],
)
def test_webhook_headers_that_frame_route_or_sign_are_refused(
    system: httpx.Client, header: str
) -> None:
    before = queued_ids(system)
    body = {**BASE_JOB, "webhook": {"url": "http://127.0.0.1:9/h", "headers": {header: "1"}}}
    reply = system.post("/device/exec", json=body)
    assert reply.status_code == 422, reply.text
    [error] = reply.json()["detail"]
    assert error["loc"] == ["body", "webhook", "headers"]
    assert header in error["msg"] and "cannot be set" in error["msg"]
    assert not queued_ids(system) - before


def test_webhook_header_values_with_line_breaks_are_refused(system: httpx.Client) -> None:
    body = {**BASE_JOB, "webhook": {"url": "http://127.0.0.1:9/h", "headers": {"X-A": "a\r\nB: c"}}}
    reply = system.post("/device/exec", json=body)
    assert reply.status_code == 422
    assert "line break" in reply.json()["detail"][0]["msg"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_webhook_numbers_must_be_finite(system: httpx.Client, number: str) -> None:
    for field in ('"retry_intervals": [%s]', '"timeout": %s'):
        raw = (
            '{"driver": "paramiko", "queue_strategy": "fifo", "command": "true", '
            '"connection_args": {"host": "127.0.0.1", "port": 1, "username": "u"}, '
            '"webhook": {"url": "http://127.0.0.1:9/h", ' + field % number + "}}"
        )
        reply = system.post(
            "/device/exec", content=raw, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 422, reply.text
        assert "finite" in json.dumps(reply.json()["detail"]), reply.text


@pytest.mark.parametrize(
    "job_id", ["a.b", "x;y", "tab\there", "nul\x00", "é", "ид", "a" * 200, "..", "a:b", "💥"]
)
def test_job_ids_rq_refuses_are_not_found(system: httpx.Client, job_id: str) -> None:
    segment = quote(job_id, safe="")
    for method, path in (
        ("GET", f"/jobs/{segment}"),
        ("DELETE", f"/jobs/{segment}"),
        ("GET", f"/jobs/{segment}/webhook-deliveries"),
    ):
        reply = system.request(method, path)
        assert reply.status_code == 404, (method, path, reply.text)
        assert isinstance(reply.json()["detail"], str)


@pytest.mark.parametrize(
    "name",
    [
        "plain.txt",
        "résumé config.txt",
        'quote" ; filename=evil.sh',
        "line\r\nX-Injected: 1.txt",
        "настройки.cfg",
        "back\\slash.txt",
    ],
)
def test_downloads_name_the_file_safely(system: httpx.Client, redis: Redis, name: str) -> None:
    staged = files.stage(redis, b"content", name, 60)
    reply = system.get(staged.download_url)
    assert reply.status_code == 200 and reply.content == b"content"
    header = reply.headers["content-disposition"]
    assert "\r" not in header and "\n" not in header
    kind, *parts = [part.strip() for part in header.split(";")]
    params = dict(part.split("=", 1) for part in parts)
    assert kind == "attachment" and set(params) == {"filename", "filename*"}, header
    fallback = params["filename"]
    assert fallback.startswith('"') and fallback.endswith('"') and fallback.isascii()
    assert '"' not in fallback[1:-1] and "\\" not in fallback
    encoded = params["filename*"]
    assert encoded.startswith("UTF-8''")
    assert unquote(encoded[len("UTF-8''") :]) == name.replace("\\", "/").rsplit("/", 1)[-1]
