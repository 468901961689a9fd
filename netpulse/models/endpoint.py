"""A webhook endpoint: a standing subscription, set once by an operator (API or settings).

It has every field of a request's ``webhook`` (where and how to send) plus filters saying
which events it wants. Each matching event becomes its own delivery to it, besides the
request's own webhook. Shape only here; the store, matching and health live in
``netpulse.webhooks.endpoints``.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from netpulse.models.events import DEFAULT_SUBSCRIPTION, check_type_pattern, matches_type
from netpulse.models.webhook import WebhookConfig

#: An endpoint id: API-made ones are ``ep_<hex>``; the settings file names its own.
ENDPOINT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

QueueStrategyName = Literal["fifo", "pinned"]


class EndpointFilters(BaseModel):
    """Which events an endpoint receives. Every filter given must match; a filter on the
    device, the strategy or the key matches only events that carry that field (so
    ``endpoint.*`` notices are chosen by type alone)."""

    model_config = ConfigDict(extra="forbid")

    event_types: list[str] | None = Field(
        None,
        max_length=32,
        description="Event types or groups (`job.*`); default: the job and detached-task "
        "events a request's webhook gets (not `job.started`, not `endpoint.*`).",
    )
    hosts: list[str] | None = Field(
        None,
        max_length=256,
        description="Device host patterns (shell style, case-insensitive: `10.1.*`, `core-?`).",
    )
    strategies: list[QueueStrategyName] | None = Field(None, max_length=2)
    submitted_by: list[str] | None = Field(
        None, max_length=256, description="Names of the API keys whose jobs are sent."
    )

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or ():
            check_type_pattern(pattern)
        return value

    @field_validator("hosts")
    @classmethod
    def _patterns(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or ():
            if not pattern or len(pattern) > 255:
                raise ValueError("a host pattern is 1 to 255 characters")
        return value

    def wants(
        self,
        event_type: str,
        host: str | None = None,
        strategy: str | None = None,
        submitted_by: str | None = None,
    ) -> bool:
        """Whether an event with these facts goes to this endpoint."""
        if self.event_types is None:
            if event_type not in DEFAULT_SUBSCRIPTION:
                return False
        elif not any(matches_type(p, event_type) for p in self.event_types):
            return False
        if self.hosts is not None and (
            host is None or not any(_host_matches(p, host) for p in self.hosts)
        ):
            return False
        if self.strategies is not None and strategy not in self.strategies:
            return False
        return self.submitted_by is None or submitted_by in self.submitted_by


def _host_matches(pattern: str, host: str) -> bool:
    return fnmatch.fnmatchcase(host.lower(), pattern.lower())


class EndpointSpec(WebhookConfig, EndpointFilters):
    """What an operator sets: a webhook's fields, the filters, and the endpoint's own
    settings. ``id`` is given in the settings file and chosen by NetPulse through the API."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str | None = Field(None, description="Set by NetPulse (`ep_...`) or the settings file.")
    description: str | None = Field(None, max_length=500)
    enabled: bool = Field(True, description="false: new events are held, not attempted.")
    max_per_second: float | None = Field(
        None,
        gt=0,
        le=10000,
        description="At most this many attempts per second to this endpoint, over all "
        "delivery processes.",
    )

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and not ENDPOINT_ID.fullmatch(value):
            raise ValueError(
                "an endpoint id is 1 to 64 letters, digits, '_', '.' or '-', starting with a "
                "letter or digit"
            )
        return value

    @field_validator("events")
    @classmethod
    def _no_events(cls, value: list[str] | None) -> list[str] | None:
        if value:
            raise ValueError("an endpoint chooses its events with event_types")
        return value

    def webhook(self) -> WebhookConfig:
        """The endpoint as a delivery sees it: a webhook config (its secrets as they are)."""
        return WebhookConfig.model_construct(
            **{name: getattr(self, name) for name in WebhookConfig.model_fields},
            _fields_set=set(self.model_fields_set) & set(WebhookConfig.model_fields),
        )


class EndpointPatch(BaseModel):
    """``PATCH /webhooks/endpoints/{id}``: the fields to change (others are kept; secrets
    too). ``replay_held`` applies when the endpoint is enabled again."""

    model_config = ConfigDict(extra="allow")

    replay_held: bool = Field(
        False,
        description="With enabled: true, the events held while it was disabled are sent now "
        "(otherwise they are marked failed, and stay redeliverable one by one).",
    )

    def changes(self) -> dict[str, Any]:
        return dict(self.model_extra or {})
