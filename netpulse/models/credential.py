"""Stored credentials: how a request names one, and what a store holds and shows.

A request's ``credential`` (the original NetPulse's ``CredentialRef``) names a provider
and a reference; the worker resolves it when the job runs, so the secret itself is never
queued. What a credential may fill is the login part of ``connection_args``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

#: The ``connection_args`` fields a credential fills.
FILLED = ("username", "password", "secret", "pkey", "passphrase")
Filled = Literal["username", "password", "secret", "pkey", "passphrase"]
#: A stored credential's name (also its ``ref`` for the ``local`` provider).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class CredentialRef(BaseModel):
    """Which credential a job logs in with: ``name`` is the provider (``local``,
    ``vault_kv``...), ``ref`` what that provider looks up."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("local", min_length=1, max_length=64, description="Provider name.")
    ref: str = Field(..., min_length=1, max_length=512, description="What the provider reads.")
    mount: str | None = Field(None, max_length=256)
    version: int | None = Field(None, ge=0)
    field_mapping: dict[Filled, Annotated[str, StringConstraints(max_length=128)]] | None = Field(
        None, description="connection_args field -> the field's name in the secret."
    )
    namespace: str | None = Field(None, max_length=256)


class CredentialWrite(BaseModel):
    """``PUT /credentials/{name}``: the login to keep. Write-only: never shown again."""

    # At least one field, none of them null: what is not given is simply left out.
    model_config = ConfigDict(
        extra="forbid", hide_input_in_errors=True, json_schema_extra={"minProperties": 1}
    )

    username: str | SkipJsonSchema[None] = Field(None, min_length=1, max_length=256)
    password: SecretStr | SkipJsonSchema[None] = Field(None, max_length=4096)
    secret: SecretStr | SkipJsonSchema[None] = Field(
        None, max_length=4096, description="Enable secret."
    )
    pkey: SecretStr | SkipJsonSchema[None] = Field(
        None, max_length=65536, description="Private key text."
    )
    passphrase: SecretStr | SkipJsonSchema[None] = Field(None, max_length=4096)

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave a field out rather than send null")
        return value

    def given(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for name in FILLED:
            value = getattr(self, name)
            if value is not None:
                values[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return values


class CredentialInfo(BaseModel):
    """A stored credential as the API shows it: which fields it has, never their values."""

    name: str
    fields: list[str]
    created_at: datetime
    updated_at: datetime
