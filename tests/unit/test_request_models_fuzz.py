"""Whatever JSON a client sends, the request models answer with a validation error or a
model, never another exception (which the API would turn into a 500). Property-based
(hypothesis): arbitrary JSON, and valid requests with one field replaced by arbitrary JSON."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from netpulse.dispatch.intake import checked
from netpulse.models.request import BulkExecutionRequest, ExecutionRequest
from netpulse.models.request import TestRequest as ConnectionTest

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)

GOOD: dict[str, Any] = {
    "driver": "netmiko",
    "connection_args": {"device_type": "cisco_ios", "host": "127.0.0.1", "port": 22},
    "command": "show version",
    "webhook": {"url": "http://127.0.0.1:9/hook"},
    "parsing": {"name": "textfsm"},
    "ttl": 60,
}
FIELDS = [
    "driver",
    "connection_args",
    "command",
    "config",
    "driver_args",
    "webhook",
    "parsing",
    "rendering",
    "ttl",
    "execution_timeout",
    "result_ttl",
    "queue_strategy",
    "task_id",
    "file_transfer",
    "enable_mode",
]
MODELS = [ExecutionRequest, BulkExecutionRequest, ConnectionTest]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accepts_or_refuses(model: Any, data: Any) -> None:
    with contextlib.suppress(ValidationError):
        checked(model, data)  # as the API validates what clients send


@FUZZ
@given(data=JSON)
def test_any_json_is_a_model_or_a_validation_error(data: Any) -> None:
    for model in MODELS:
        accepts_or_refuses(model, data)


@FUZZ
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_one_field_of_a_good_request_replaced_by_anything(field: str, value: Any) -> None:
    accepts_or_refuses(ExecutionRequest, {**GOOD, field: value})
    accepts_or_refuses(
        BulkExecutionRequest, {**GOOD, "devices": [{"host": "127.0.0.2", field: value}]}
    )


@FUZZ
@given(field=st.sampled_from(["host", "port", "device_type", "username", "password"]), value=JSON)
def test_connection_args_replaced_by_anything(field: str, value: Any) -> None:
    args = {**GOOD["connection_args"], field: value}
    accepts_or_refuses(ExecutionRequest, {**GOOD, "connection_args": args})
    accepts_or_refuses(ConnectionTest, {"driver": "netmiko", "connection_args": args})
