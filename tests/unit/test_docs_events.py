"""The documented webhook events are the ones NetPulse sends (docs and code once disagreed
on cancelled jobs)."""

from __future__ import annotations

import re
from pathlib import Path

from netpulse.webhooks.events import EVENT_TYPES, RESULT_TYPES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _event_rows() -> dict[str, tuple[str, str]]:
    """event_type -> (status, result.type) from the events table of docs/webhooks.md."""
    text = (DOCS / "webhooks.md").read_text()
    section = text.split("## Events", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = re.findall(r"`([^`]+)`", line.split("|", 2)[-1]) if line.startswith("|") else []
        if len(cells) >= 3 and cells[0].startswith("job."):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_every_event_type_sent_is_documented_with_its_status_and_result_type() -> None:
    rows = _event_rows()
    for status, event_type in EVENT_TYPES.items():
        assert rows.get(event_type) == (status, RESULT_TYPES[status]), (event_type, rows)
    assert set(rows) == set(EVENT_TYPES.values())


def test_the_api_docs_say_a_cancelled_job_gets_its_event() -> None:
    api = (DOCS / "api.md").read_text()
    assert "job.canceled" in api
    assert "cancelled before it ran sends no webhook event" not in api
    assert "No event is sent for a job cancelled" not in (DOCS / "webhooks.md").read_text()
