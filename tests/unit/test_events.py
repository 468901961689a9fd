"""The event payload: both formats, truncation, and what it never contains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from netpulse_sdk.result import WebhookEvent

from netpulse.models.job import JobError
from netpulse.webhooks.events import build_event, encode

START = datetime(2026, 1, 1, tzinfo=UTC)


def _event(**kw):
    base = dict(
        job_id="j1",
        status="finished",
        meta={"host": "10.0.0.1", "device_type": "cisco_ios", "command": ["show ver"]},
        started_at=START,
        ended_at=START + timedelta(seconds=2),
        retval=[{"command": "show ver", "stdout": "IOS 15", "stderr": "", "exit_status": 0}],
        error=None,
    )
    base.update(kw)
    return build_event(**base)


def test_structured_event_parses_with_the_public_client_model() -> None:
    event = WebhookEvent.model_validate(_event())
    assert event.event_type == "job.completed" and event.final
    assert event.duration == 2
    assert event.result == {
        "type": "successful",
        "retval": [{"command": "show ver", "stdout": "IOS 15", "stderr": "", "exit_status": 0}],
        "error": None,
    }
    assert event.device == {"host": "10.0.0.1", "device_type": "cisco_ios"}


def test_failed_event_in_text_format_is_the_error_string() -> None:
    event = _event(
        status="failed", retval=None, error=JobError(type="timeout", message="too slow"), fmt="text"
    )
    assert event["event_type"] == "job.failed"
    assert event["result"] == "timeout: too slow"


def test_stopped_event() -> None:
    event = _event(status="stopped", retval=None, error=JobError(type="stopped", message="x"))
    assert event["event_type"] == "job.stopped" and event["result"]["type"] == "stopped"


def test_large_output_is_cut_and_says_so() -> None:
    big = [{"command": "show tech", "stdout": "x" * 10_000, "exit_status": 0}]
    event = _event(retval=big, max_output_bytes=1024)
    assert event["truncated"] is True and event["job_url"] == "/jobs/j1"
    assert len(event["result"]["retval"][0]["stdout"]) == 1024
    assert "truncated" not in _event()


def test_encoding_is_compact_json() -> None:
    assert encode({"a": 1, "b": [1, 2]}) == b'{"a":1,"b":[1,2]}'


def test_a_new_deliverys_fields_are_those_of_its_record() -> None:
    """The outbox builds a delivery's stored fields without a Delivery (one encoding per
    event); they must be exactly what Delivery.new(...).to_hash() stores."""
    import json
    from dataclasses import asdict

    from netpulse.webhooks import store

    snapshot = store.JobSnapshot(
        id="j", status="finished", created_at=None, started_at=None, ended_at=None, meta={"a": 1}
    )
    common = {
        "delivery_id": "dlv_00000000_x",
        "job_id": "j",
        "event_type": "job.completed",
        "caller": "basic",
        "url": "http://h/x",
        "webhook_json": '{"url": "http://h/x"}',
        "body": b"{}",
        "now": 12.5,
        "endpoint_id": "ep_1",
        "max_per_second": 2.0,
    }
    built = store.Delivery.new(**common, req={"r": 1}, job=snapshot).to_hash()
    direct = store.new_delivery_fields(
        **common, req_json=json.dumps({"r": 1}), job_json=json.dumps(asdict(snapshot))
    )
    assert direct == built
