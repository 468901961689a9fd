"""Stream records become table rows as the archiver's mode says (pure logic)."""

from __future__ import annotations

import json

from netpulse.audit import rows, stream
from netpulse.models.audit import AuditMode


def _records(mode: AuditMode) -> list[tuple[bytes, dict[bytes, bytes]]]:
    submitted = stream.submitted(
        "j1",
        mode=mode,
        meta={"host": "r1", "submitted_by": "robot", "device_type": "cisco_ios"},
        queue="NodeQ_a",
        kind="config",
        lines=["interface Gi1", " description uplink"],
        port=22,
        client="192.0.2.9",
        at=1_800_000_000.0,
    )
    ended = stream.ended(
        "j1",
        mode=mode,
        max_output_bytes=5,
        status="finished",
        started_at=1_800_000_001.0,
        ended_at=1_800_000_003.0,
        retval=[{"command": "interface Gi1", "stdout": "0123456789", "exit_status": 0}],
        error=None,
    )
    return [
        (b"1-0", {k.encode(): v.encode() for k, v in submitted.items()}),
        (b"2-0", {k.encode(): v.encode() for k, v in ended.items()}),
        (b"3-0", {k.encode(): v.encode() for k, v in stream.ended_without_data("j2").items()}),
    ]


def test_full_keeps_who_what_and_the_capped_output() -> None:
    batch = rows.collect(_records(AuditMode.FULL), AuditMode.FULL, max_output=100)
    sub = batch.submissions["j1"]
    assert sub["submitted_by"] == "robot" and sub["client"] == "192.0.2.9"
    assert json.loads(sub["lines"]) == ["interface Gi1", " description uplink"]
    end = batch.ends["j1"]
    assert end["duration"] == 2.0
    assert json.loads(end["results"]) == [
        {"command": "interface Gi1", "exit_status": 0, "output": "01234", "truncated": True}
    ]
    assert batch.bare_ends == {"j2"} and batch.entry_ids == [b"1-0", b"2-0", b"3-0"]


def test_metadata_drops_output_even_when_a_worker_sent_it() -> None:
    batch = rows.collect(_records(AuditMode.FULL), AuditMode.METADATA, max_output=100)
    assert json.loads(batch.ends["j1"]["results"]) == [
        {"command": "interface Gi1", "exit_status": 0}
    ]
    assert batch.submissions["j1"]["mode"] == "metadata"


def test_none_keeps_only_that_a_job_ran() -> None:
    batch = rows.collect(_records(AuditMode.NONE), AuditMode.NONE, max_output=100)
    assert set(batch.submissions["j1"]) == {"submitted_at", "submitted_by", "mode"}
    assert batch.ends == {} and batch.bare_ends == set()
    assert "lines" not in json.loads(
        stream.submitted(
            "x",
            mode=AuditMode.NONE,
            meta={},
            queue=None,
            kind="command",
            lines=["a"],
            port=None,
            client=None,
        )["data"]
    )
