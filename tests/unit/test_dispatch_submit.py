"""What dispatch decides before anything is queued: strategy, device key, the plugins'
checks, bulk expansion and the sentence a validation error becomes (no Redis needed)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from netpulse.dispatch import submit
from netpulse.dispatch.intake import checked
from netpulse.models.request import BulkExecutionRequest, ExecutionRequest


def request(driver: str = "netmiko", **changes: Any) -> ExecutionRequest:
    args: dict[str, Any] = {"host": "10.0.0.1", "username": "u", "device_type": "cisco_ios"}
    args.update(changes.pop("connection_args", {}))
    return ExecutionRequest.model_validate(
        {"driver": driver, "connection_args": args, "command": "show version", **changes}
    )


def test_the_errors_reply_as_unprocessable_and_unavailable() -> None:
    assert submit.SubmissionError.http_status == 422
    assert submit.NoCapacity.http_status == 503


@pytest.mark.parametrize(
    ("driver", "strategy"),
    [("netmiko", "pinned"), ("paramiko", "fifo"), ("napalm", "fifo"), ("pyeapi", "fifo")],
)
def test_the_drivers_default_strategy_applies_when_the_request_names_none(
    driver: str, strategy: str
) -> None:
    assert submit.strategy_of(request(driver)) == strategy
    assert submit.strategy_of(request(driver, queue_strategy="fifo")) == "fifo"


@pytest.mark.parametrize(
    ("driver", "extra", "key"),
    [
        ("netmiko", {}, "10.0.0.1:22"),
        ("paramiko", {"port": 2200}, "10.0.0.1:2200"),
        ("pyeapi", {}, "10.0.0.1:443"),
        ("pyeapi", {"port": 443}, "10.0.0.1:443"),
        ("pyeapi", {"transport": "http"}, "10.0.0.1:80"),
        ("pyeapi", {"transport": "http", "port": 8080}, "10.0.0.1:8080"),
    ],
)
def test_the_device_key_carries_the_drivers_default_port(
    driver: str, extra: dict[str, Any], key: str
) -> None:
    assert submit.device_key(request(driver, connection_args=extra)) == key


def test_an_unknown_driver_or_caller_is_refused_for_requests_built_in_python() -> None:
    with pytest.raises(submit.SubmissionError, match="unknown driver 'telnet'"):
        submit.check_driver_requirements(request("telnet"))
    hooked = request(webhook={"name": "nope", "url": "http://a/"})
    with pytest.raises(submit.SubmissionError, match="unknown webhook caller 'nope'"):
        submit.check_driver_requirements(hooked)


def test_the_drivers_own_rules_are_checked() -> None:
    no_type = request("netmiko", connection_args={"device_type": None})
    with pytest.raises(submit.SubmissionError, match="device_type is required"):
        submit.check_driver_requirements(no_type)
    dry = request("napalm", dry_run=True, connection_args={"device_type": "ios"})
    with pytest.raises(submit.SubmissionError, match="dry_run applies to a config"):
        submit.check_driver_requirements(dry)
    odd_option = request("paramiko", connection_args={"colour": "red"})
    with pytest.raises(submit.SubmissionError, match="colour"):
        submit.check_driver_requirements(odd_option)


def test_a_file_transfer_on_a_driver_that_cannot_names_those_that_can() -> None:
    transfer = request(
        "pyeapi", file_transfer={"operation": "download", "remote_path": "/tmp/x"}, command=None
    )
    with pytest.raises(submit.SubmissionError) as refused:
        submit.check_driver_requirements(transfer)
    assert "cannot transfer files" in str(refused.value)
    assert "netmiko" in str(refused.value) and "paramiko" in str(refused.value)


def test_bulk_expands_shared_fields_and_lists_bad_devices_with_a_reason() -> None:
    bulk = checked(
        BulkExecutionRequest,
        {
            "driver": "netmiko",
            "connection_args": {"username": "u", "device_type": "cisco_ios"},
            "command": "show version",
            "devices": [
                {"host": "a"},
                {"host": "b", "command": "show clock"},
                {"host": "c", "device_type": None},
                {"port": 22},
            ],
        },
    )
    good, bad = submit.expand_bulk(bulk)
    assert [(r.connection_args.host, r.command) for r in good] == [
        ("a", "show version"),
        ("b", "show clock"),
    ]
    assert all(r.connection_args.username == "u" for r in good)
    assert [f.host for f in bad] == ["c", "devices[3]"]
    assert "device_type is required" in bad[0].reason
    assert "host" in bad[1].reason


def test_a_validation_error_becomes_one_sentence_with_field_paths() -> None:
    with pytest.raises(ValidationError) as caught:
        ExecutionRequest.model_validate(
            {"driver": "netmiko", "connection_args": {"port": "x"}, "command": "x", "ttl": 0}
        )
    text = submit.describe_validation_error(caught.value)
    assert "connection_args.host: " in text and "connection_args.port: " in text
    assert "ttl: " in text and "Value error, " not in text
    assert text.count("; ") == 2


def test_bulk_jobs_wait_600_s_by_default_and_keep_a_given_ttl() -> None:
    base = {"driver": "paramiko", "connection_args": {"username": "u"}, "command": "true"}
    [default] = submit.expand_bulk(
        checked(BulkExecutionRequest, {**base, "devices": [{"host": "a"}]})
    )[0]
    assert default.ttl == 600
    given = checked(BulkExecutionRequest, {**base, "ttl": 60, "devices": [{"host": "a"}]})
    assert submit.expand_bulk(given)[0][0].ttl == 60


def test_a_per_device_file_transfer_is_the_devices_payload_not_a_connection_arg() -> None:
    transfer = {"operation": "download", "remote_path": "/etc/hostname"}
    bulk = checked(
        BulkExecutionRequest,
        {
            "driver": "paramiko",
            "connection_args": {"username": "u"},
            "command": "uptime",
            "devices": [{"host": "a", "file_transfer": transfer}, {"host": "b"}],
        },
    )
    (first, second), bad = submit.expand_bulk(bulk)
    assert bad == []
    assert first.file_transfer is not None and first.file_transfer.remote_path == "/etc/hostname"
    assert first.command is None and "file_transfer" not in (
        first.connection_args.model_extra or {}
    )
    assert second.file_transfer is None and second.command == "uptime"
