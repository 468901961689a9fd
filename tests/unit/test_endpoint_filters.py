"""Which events an endpoint receives, and what the event catalogue promises."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from netpulse.models.endpoint import EndpointFilters, EndpointSpec
from netpulse.models.events import DEFAULT_SUBSCRIPTION, EVENT_TYPES
from netpulse.webhooks.payload import sample


def test_without_event_types_an_endpoint_gets_what_a_request_webhook_gets() -> None:
    everything = EndpointFilters()
    for name in EVENT_TYPES:
        assert everything.wants(name) is (name in DEFAULT_SUBSCRIPTION)
    assert not everything.wants("job.started") and not everything.wants("endpoint.disabled")


def test_groups_and_names_choose_the_types() -> None:
    jobs = EndpointFilters(event_types=["job.*"])
    assert jobs.wants("job.started") and jobs.wants("job.canceled")
    assert not jobs.wants("detached.completed")
    one = EndpointFilters(event_types=["endpoint.disabled"])
    assert one.wants("endpoint.disabled") and not one.wants("endpoint.recovered")


def test_host_patterns_are_shell_style_and_ignore_case() -> None:
    core = EndpointFilters(hosts=["CORE-?", "10.1.*"])
    assert core.wants("job.failed", host="core-1")
    assert core.wants("job.failed", host="10.1.200.3")
    assert not core.wants("job.failed", host="core-12")
    assert not core.wants("job.failed", host="10.10.0.1")


def test_a_filter_matches_only_events_that_carry_its_field() -> None:
    by_host = EndpointFilters(event_types=["endpoint.*"], hosts=["*"])
    assert not by_host.wants("endpoint.disabled")  # a notice has no device
    assert EndpointFilters(event_types=["endpoint.*"]).wants("endpoint.disabled")
    keyed = EndpointFilters(submitted_by=["robot"], strategies=["pinned"])
    assert keyed.wants("job.completed", submitted_by="robot", strategy="pinned")
    assert not keyed.wants("job.completed", submitted_by="robot", strategy="fifo")
    assert not keyed.wants("job.completed", submitted_by=None, strategy="pinned")


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("event_types", ["job.x"], "unknown event type 'job.x'"),
        ("event_types", ["nothing.*"], "unknown event type 'nothing.*'"),
        ("hosts", [""], "1 to 255"),
        ("strategies", ["sideways"], "fifo"),
        ("events", ["job.started"], "event_types"),
        ("id", "-starts-badly", "endpoint id"),
        ("max_per_second", 0, "greater than 0"),
        ("content_type", "json", "media type"),
    ],
)
def test_a_bad_field_is_refused_with_a_sentence(field: str, value: object, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        EndpointSpec.model_validate({"url": "https://hooks.example.com/x", field: value})
    assert words in str(refused.value)


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
@pytest.mark.parametrize("include_output", [True, False])
def test_each_sample_is_what_its_schema_describes(event_type: str, include_output: bool) -> None:
    model = EVENT_TYPES[event_type][0]
    payload = sample(event_type, include_output=include_output)
    assert payload["event_type"] == event_type
    model.model_validate(payload)
