"""The `webhook` object of a job request (the specification's configuration options)."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from netpulse.models.plugins import WEBHOOK_CALLERS, plugins_in
from netpulse.models.signing_secret import validate_secret
from netpulse.net.ssrf import check_url

HttpMethod = Literal["GET", "POST", "PUT", "DELETE", "PATCH"]

#: Headers a caller may not set: they frame or route the message (a wrong Content-Length cuts
#: the body while the attempt still looks delivered) or they are the signature's own.
RESERVED_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "host",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
    }
)
RESERVED_HEADER_PREFIXES = ("proxy-", "webhook-")

#: The longest payload template accepted (characters).
MAX_PAYLOAD_TEMPLATE_CHARS = 64 * 1024

#: An HTTP field name (RFC 9110 token).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class WebhookConfig(BaseModel):
    """Where and how to notify an external system when a job ends.

    ``headers``, ``cookies``, ``auth`` and ``secret`` are write-only: they are kept for the
    delivery but never shown in job responses, logs, the delivery log or payloads.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field("basic", description="Webhook caller plugin (`basic` is built in).")
    url: str = Field(..., description="Endpoint URL, http or https.")
    method: HttpMethod = "POST"
    headers: dict[str, str] | None = Field(None, repr=False)
    cookies: dict[str, str] | None = Field(None, repr=False)
    auth: tuple[str, SecretStr] | None = Field(
        None, description="HTTP basic authentication as [username, password]."
    )
    timeout: float = Field(5.0, ge=0.5, le=120.0, description="Seconds per attempt.")
    max_retries: int | None = Field(
        None, ge=0, le=10, description="Retries after the first attempt (default: schedule)."
    )
    retry_intervals: list[float] | None = Field(
        None,
        min_length=1,
        max_length=10,
        description="Seconds before each retry; the last value is reused when shorter.",
    )
    format: Literal["event", "text"] = Field(
        "event",
        description="`event`: structured WebhookEvent; `text`: `result` as one string.",
    )
    secret: SecretStr | None = Field(
        None, description="Per-request Standard Webhooks signing secret (whsec_...)."
    )
    include_output: bool = Field(
        True,
        description="false: the event carries status, device, command names, exit statuses, "
        "the error's type and the job's URL, never device output or parsed data.",
    )
    events: list[Literal["job.started"]] | None = Field(
        None,
        max_length=1,
        description="Events sent besides the job's final one, when asked: `job.started` "
        "(the job began on its worker).",
    )
    template: str | None = Field(
        None,
        max_length=MAX_PAYLOAD_TEMPLATE_CHARS,
        description="Jinja2 template of the body (sandboxed, as config rendering); it sees "
        "the event as `event` and its fields at the top level. Checked against a sample "
        "event when submitted (422).",
    )
    content_type: str | None = Field(
        None,
        max_length=200,
        description="Content-Type of the body (default application/json).",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        check_url(value)  # http(s) only, a host, no credentials in the URL
        return value

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            lowered = name.lower()
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            if lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_HEADER_PREFIXES):
                raise ValueError(
                    f"header {name!r} cannot be set: NetPulse sets the message framing, "
                    "routing and webhook-* signature headers itself"
                )
            if any(ch in text for ch in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} contains a line break or NUL")
        return value

    @field_validator("content_type")
    @classmethod
    def _media_type(cls, value: str | None) -> str | None:
        if value is not None and (
            any(ch in value for ch in "\r\n\0") or not re.fullmatch(r"[\w.+-]+/[\w.+-]+.*", value)
        ):
            raise ValueError(f"content_type {value!r} is not a media type such as text/plain")
        return value

    @field_validator("retry_intervals")
    @classmethod
    def _intervals(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and any(v < 0 or v > 86400 for v in value):
            raise ValueError("retry_intervals must each be between 0 and 86400 seconds")
        return value

    @field_validator("name")
    @classmethod
    def _known_caller(cls, value: str, info: ValidationInfo) -> str:
        registry = plugins_in(info, WEBHOOK_CALLERS)
        if registry is not None and value not in registry.names():
            raise ValueError(
                f"unknown webhook caller {value!r}; valid: {', '.join(registry.names())}"
            )
        return value

    @field_validator("secret")
    @classmethod
    def _secret_format(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            validate_secret(value.get_secret_value())
        return value

    def private_dump(self) -> dict[str, Any]:
        """The config as JSON with its secrets' values (sealed or not, as they are held):
        what a delivery record keeps; never shown."""
        data = self.model_dump(mode="json", exclude={"auth", "secret"})
        if self.auth is not None:
            data["auth"] = [self.auth[0], self.auth[1].get_secret_value()]
        if self.secret is not None:
            data["secret"] = self.secret.get_secret_value()
        return data

    def public_url(self) -> str:
        """The URL without user:password, for logs and the delivery log."""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        if ":" in (parts.hostname or ""):
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc, query="").geturl()
