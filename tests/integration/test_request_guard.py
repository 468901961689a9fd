"""The key before the body, bounded bodies, no JSON that breaks the API (issue 10, parts 3-6).

Black box through HTTP against the session's controller; every refusal is checked to have
queued nothing, and the job listing to keep working after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
from redis import Redis

from tests.conftest import API_KEY

GOOD = {
    "driver": "netmiko",
    "connection_args": {"device_type": "cisco_ios", "host": "127.0.0.1", "port": 1},
    "command": "show version",
    "queue_strategy": "fifo",
}
MIB = 1024 * 1024


def queued(redis: Redis) -> int:
    """Jobs stored so far (workers take them from the queue, but the job stays)."""
    return sum(1 for key in redis.scan_iter(match="rq:job:*", count=1000) if key.count(b":") == 2)


def nested(levels: int) -> str:
    return json.dumps({**GOOD, "driver_args": {"x": "PLACE"}}).replace(
        '"PLACE"', "[" * levels + "]" * levels
    )


def test_without_the_key_a_bad_body_is_403_not_a_validation_detail(controller_url: str) -> None:
    with httpx.Client(base_url=controller_url, timeout=30) as anonymous:
        for body in (b"{not json", json.dumps({"driver": "nope"}).encode()):
            reply = anonymous.post(
                "/device/exec", content=body, headers={"content-type": "application/json"}
            )
            assert reply.status_code == 403, reply.text
            assert "API key" in reply.json()["detail"]
        wrong = anonymous.post("/device/bulk", json={}, headers={"X-API-KEY": "wrong"})
        assert wrong.status_code == 403
        # Probes and the schema stay open.
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200


def test_a_body_over_the_limit_is_413_and_nothing_is_queued(api: httpx.Client, redis: Redis):
    before = queued(redis)
    big = {**GOOD, "command": "x" * (17 * MIB)}
    reply = api.post("/device/exec", json=big)
    assert reply.status_code == 413, reply.text[:300]
    assert "server.max_body_bytes" in reply.json()["detail"]
    assert queued(redis) == before


def test_a_chunked_body_without_a_length_is_cut_at_the_limit(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"driver": "netmiko", "command": "'
        for _ in range(20):
            yield b"x" * MIB
        yield b'"}'

    reply = api.post("/device/exec", content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413, reply.text[:300]


def test_deep_nesting_is_422_in_a_body_and_in_a_multipart_field(
    api: httpx.Client, redis: Redis
) -> None:
    before = queued(redis)
    reply = api.post(
        "/device/exec", content=nested(5000), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422, reply.text[:300]
    assert "nests" in reply.json()["detail"] and "server.max_json_depth" in reply.json()["detail"]
    form = api.post(
        "/device/exec",
        data={"request": nested(5000)},
        files={"file": ("f.bin", b"data", "application/octet-stream")},
    )
    assert form.status_code == 422, form.text[:300]
    assert "nests" in form.json()["detail"]
    # Nesting that is normal for options still passes validation of the body's shape.
    ok = api.post("/device/exec", content=nested(5), headers={"content-type": "application/json"})
    assert ok.status_code != 500
    assert queued(redis) <= before + (1 if ok.status_code == 201 else 0)


def test_a_lone_surrogate_is_422_naming_the_field_and_listings_keep_working(
    api: httpx.Client, redis: Redis
) -> None:
    before = queued(redis)
    for field in ("command", "task_id"):
        raw = json.dumps({**GOOD, field: "show \ud800 version"})  # json.dumps escapes it
        assert "\\ud800" in raw
        reply = api.post("/device/exec", content=raw, headers={"content-type": "application/json"})
        assert reply.status_code == 422, reply.text
        assert f"body.{field}" in reply.json()["detail"]
    # A valid pair (an emoji) is text like any other.
    emoji = json.dumps({**GOOD, "task_id": "deploy \U0001f680"})
    assert "\\ud83d\\ude80" in emoji
    accepted = api.post("/device/exec", content=emoji, headers={"content-type": "application/json"})
    assert accepted.status_code == 201, accepted.text
    assert queued(redis) == before + 1
    listing = api.get("/jobs")
    assert listing.status_code == 200, listing.text[:300]


def test_multipart_ttl_that_is_not_whole_seconds_in_range_is_422(api: httpx.Client) -> None:
    for ttl in ("soon", 10**12, -5, 1.5):
        reply = api.post(
            "/device/exec",
            data={"request": json.dumps({**GOOD, "ttl": ttl})},
            files={"file": ("f.bin", b"data", "application/octet-stream")},
        )
        assert reply.status_code == 422, (ttl, reply.text)
        assert "ttl" in reply.text


def test_the_guard_does_not_keep_a_valid_client_out(controller_url: str) -> None:
    with httpx.Client(base_url=controller_url, headers={"X-API-KEY": API_KEY}) as client:
        assert client.get("/jobs").status_code == 200


def test_a_job_stored_unreadable_leaves_the_listing_working(
    system: httpx.Client, redis: Redis
) -> None:
    """A job written corrupted (or by an incompatible version) is left out of listings and
    named as such on its own route; it never fails the listing for everyone."""
    ids = [system.post("/device/exec", json=GOOD).json()["id"] for _ in range(2)]
    broken, intact = ids
    for job_id in ids:  # final first: its worker writes no more
        assert system.get(f"/jobs/{job_id}", params={"wait": 30}).json()["status"] == "failed"
    redis.hset(f"rq:job:{broken}", "created_at", "the day before yesterday")
    listing = system.get("/jobs", params={"limit": 10000})
    assert listing.status_code == 200, listing.text[:300]
    listed = {job["id"] for job in listing.json()}
    assert intact in listed and broken not in listed
    alone = system.get(f"/jobs/{broken}")
    assert alone.status_code == 422, alone.text
    assert "cannot show" in alone.json()["detail"]
    assert system.get(f"/jobs/{intact}").status_code == 200


def test_since_needs_a_time_zone(api: httpx.Client) -> None:
    """A time without a zone would be read in the server's local time: refused, as the
    docs say, rather than silently shifted."""
    naive = api.get("/webhooks/deliveries", params={"since": "2026-11-28T00:00:00"})
    assert naive.status_code == 422, naive.text
    assert "since" in naive.text
    assert api.get("/webhooks/deliveries", params={"since": "2026-11-28T00:00:00Z"}).is_success
    recover = api.post("/webhooks/recover", json={"since": "2026-11-28T00:00:00"})
    assert recover.status_code == 422, recover.text
