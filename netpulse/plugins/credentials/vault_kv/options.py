"""The ``vault_kv`` provider's options (``credentials.vault_kv`` in the settings), checked once
when the provider is built: a wrong one is a :class:`~netpulse.config.ConfigError` whose
sentence names the setting (``credentials.vault_kv.<field>``) and never quotes its value.

Options given through the environment (``NETPULSE_CREDENTIALS__VAULT_KV__KV_VERSION=1``)
arrive as strings, so numbers, booleans and lists are read from strings here too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from netpulse.config import ConfigError

SECTION = "credentials.vault_kv"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class VaultKvOptions(BaseModel):
    """Where Vault is, how to log in to it, and what may be read from it."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(..., description="Vault's address, http(s)://host:port.")
    token: SecretStr | None = Field(None, description="A Vault token (or use AppRole).")
    role_id: SecretStr | None = Field(None, description="AppRole role_id.")
    secret_id: SecretStr | None = Field(None, description="AppRole secret_id.")
    approle_mount: str = Field("approle", min_length=1, description="Where AppRole is mounted.")
    namespace: str | None = Field(None, description="Vault Enterprise namespace.")
    mount: str = Field("secret", min_length=1, description="The KV engine's mount.")
    kv_version: int = Field(2, description="1 or 2: the KV engine's version.")
    allowed_paths: list[str] = Field(
        default_factory=list, description="fnmatch patterns of '<mount>/<path>'; empty: all."
    )
    cache_ttl: float = Field(60.0, ge=0, le=86400, description="Seconds a secret is kept.")
    timeout: float = Field(5.0, gt=0, le=300, description="Seconds one Vault request may take.")
    verify: bool | str = Field(True, description="Verify TLS, or a CA bundle file.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// address with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not hold a user or password (use token or AppRole)")
        if parts.query or parts.fragment:
            raise ValueError("must not hold a query or fragment")
        return value.strip().rstrip("/")

    @field_validator("approle_mount", "mount")
    @classmethod
    def _mount(cls, value: str) -> str:
        value = value.strip("/")
        if not value:
            raise ValueError("must name a mount")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip("/") or None

    @field_validator("kv_version", mode="before")
    @classmethod
    def _kv_version(cls, value: Any) -> Any:
        if value in (1, 2, "1", "2"):
            return int(value)
        raise ValueError("must be 1 or 2")

    @field_validator("allowed_paths", mode="before")
    @classmethod
    def _patterns(cls, value: Any) -> Any:
        """A list, or from the environment a JSON list or comma-separated patterns."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    return json.loads(text)
                except ValueError:
                    raise ValueError("must be a JSON list of patterns") from None
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("verify", mode="before")
    @classmethod
    def _verify(cls, value: Any) -> Any:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            if not Path(value).is_file():
                raise ValueError("must be true, false or the path of a CA bundle file")
        return value


def env_name(field: str) -> str:
    return f"NETPULSE_CREDENTIALS__VAULT_KV__{field.upper()}"


def _problem(field: str, message: str) -> ConfigError:
    return ConfigError(
        f"invalid configuration: setting {SECTION}.{field} ({env_name(field)}): {message}"
    )


def load_options(raw: dict[str, Any]) -> VaultKvOptions:
    """The options, or ``ConfigError`` naming each wrong setting."""
    try:
        options = VaultKvOptions.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"setting {SECTION}.{field} ({env_name(field)}): {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    has_role, has_secret = options.role_id is not None, options.secret_id is not None
    if options.token is not None and (has_role or has_secret):
        raise _problem("token", "give either token or role_id and secret_id (AppRole), not both")
    if has_role != has_secret:
        missing = "secret_id" if has_role else "role_id"
        raise _problem(missing, "AppRole needs both role_id and secret_id")
    if options.token is None and not has_role:
        raise _problem("token", "set token, or role_id and secret_id to log in with AppRole")
    return options
