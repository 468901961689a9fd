"""Job requests: `POST /device/exec`, `/device/bulk` and `/device/test` bodies."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from netpulse.models.credential import CredentialRef
from netpulse.models.plugins import DRIVERS, plugins_in
from netpulse.models.webhook import WebhookConfig

#: Validation context for a request read back from storage (a queued job, a delivery
#: record): no plugin checks, as with no context at all (``models.plugins``); named so that
#: the call sites say why.
STORED: dict[str, Any] = {}

Payload = str | list[str] | dict[str, Any]

#: How a job is queued: ``fifo`` (any worker, one session per job) or ``pinned`` (the node
#: that keeps the device's session warm).
QueueStrategy = Literal["fifo", "pinned"]


class FileTransfer(BaseModel):
    """Copy a file (or a directory) to (``upload``) or from (``download``) the device.

    The fields of the original NetPulse; what each does is in docs/api.md ("File
    transfer") and ``netpulse.drivers.transfer``. ``local_path`` names a file or directory
    on the worker, inside the device files directory (``drivers.files_dir``).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    operation: Literal["upload", "download"]
    remote_path: str = Field(..., min_length=1, max_length=4096)
    local_path: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Upload source (instead of a multipart file) or download copy, on the "
        "worker inside drivers.files_dir.",
    )
    verify: bool = Field(
        True,
        validation_alias=AliasChoices("verify", "verify_file"),
        description="Compare checksums after the copy (verify_file is the same).",
    )
    hash_algorithm: Literal["md5", "sha1", "sha256"] = "sha256"
    overwrite: bool = Field(True, description="false: refuse when the target exists.")
    resume: bool = Field(False, description="Continue a partial copy (its start verified).")
    recursive: bool = Field(False, description="A directory tree (needs local_path).")
    sync_mode: Literal["full", "hash"] = Field(
        "full", description="hash: skip a file whose remote hash matches."
    )
    chunk_size: int = Field(32768, ge=1024, le=16 * 1024 * 1024, description="SFTP write size.")
    chmod: str | None = Field(
        None, pattern=r"^0?[0-7]{3}$|^[0-7]{4}$", description="Octal mode set after upload."
    )
    execute_after_upload: bool = Field(False, description="Run a command after the upload.")
    execute_command: str | None = Field(
        None, min_length=1, max_length=65536, description="What to run (default: the file)."
    )
    cleanup_after_exec: bool = Field(True, description="Remove the file after the command.")

    @model_validator(mode="after")
    def _consistent(self) -> FileTransfer:
        upload_only = [
            name
            for name in ("chmod", "execute_command")
            if getattr(self, name) is not None and self.operation != "upload"
        ]
        if self.execute_after_upload and self.operation != "upload":
            upload_only.append("execute_after_upload")
        if upload_only:
            raise ValueError(f"{', '.join(upload_only)} apply to an upload only")
        if self.execute_command is not None and not self.execute_after_upload:
            raise ValueError("execute_command is given without execute_after_upload: true")
        if self.recursive and self.local_path is None:
            raise ValueError("a recursive transfer needs local_path (the directory on the worker)")
        if self.recursive and self.execute_after_upload:
            raise ValueError("execute_after_upload applies to one file, not a recursive transfer")
        return self


#: Option names that hold a secret end so (``password``, ``proxy_passphrase``, ``pkey``...):
#: drivers name their secret options this way, and they never leave the job (webhook
#: payloads, logs). ``key_filename`` is a path, but says which key: kept out too.
SECRET_SUFFIXES = ("password", "passphrase", "secret", "pkey", "token", "key_filename")


def is_secret_option(name: str) -> bool:
    """Whether an option of ``connection_args`` or ``driver_args`` holds a secret."""
    return name.lower().endswith(SECRET_SUFFIXES)


class ConnectionArgs(BaseModel):
    """How to reach a device. Extra fields are the driver's options: each driver allows only
    the ones it lists (``connection_options`` of its class, checked by the request models)."""

    model_config = ConfigDict(extra="allow")

    host: str = Field(..., min_length=1)
    device_type: str | None = None
    username: str | None = None
    password: str | None = Field(None, repr=False)
    port: int | None = Field(None, ge=1, le=65535)
    secret: str | None = Field(None, repr=False)


def _check_driver(value: str, info: ValidationInfo) -> str:
    registry = plugins_in(info, DRIVERS)
    if registry is not None and value not in registry.names():
        raise ValueError(f"unknown driver {value!r}; valid: {', '.join(registry.names())}")
    return value


def _driver_class(info: ValidationInfo) -> Any:
    """The request's driver class, when drivers are checked and ``driver`` was valid."""
    registry = plugins_in(info, DRIVERS)
    name = info.data.get("driver")
    if registry is None or name not in registry.names():
        return None
    return registry.get(name)


def _check_connection_options(value: Any, info: ValidationInfo) -> Any:
    """Only the options the driver allows (``ValueError`` names the option and the driver)."""
    driver = _driver_class(info)
    if driver is not None:
        driver.check_connection_args(value)
    return value


def _check_driver_options(value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    driver = _driver_class(info)
    if driver is not None:
        driver.check_driver_args(value)
    return value


#: A detached task's id: it names a directory on the host.
DETACHED_TASK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ExecutionRequest(BaseModel):
    """One job on one device. Unknown top-level fields are accepted (the client sends some)."""

    model_config = ConfigDict(extra="allow")

    driver: str
    connection_args: ConnectionArgs
    command: Payload | None = None
    config: Payload | None = None
    file_transfer: FileTransfer | None = None
    staged_file_id: str | None = Field(
        None, description="An uploaded file (multipart `file`) the upload sends."
    )
    driver_args: dict[str, Any] = Field(default_factory=dict)
    enable_mode: bool = False
    save: bool = False
    detach: bool = Field(
        False,
        description="Start the command as a detached task on the host (paramiko) and return "
        "at once; see docs/detached-tasks.md.",
    )
    dry_run: bool = False
    rendering: dict[str, Any] | None = None
    parsing: dict[str, Any] | None = None
    queue_strategy: QueueStrategy | None = None
    ttl: int | None = Field(None, ge=1, le=86400)
    execution_timeout: int | None = Field(None, ge=1, le=86400)
    result_ttl: int | None = Field(None, ge=60, le=604800)
    webhook: WebhookConfig | None = None
    credential: CredentialRef | None = Field(
        None, description="A stored credential that fills the login when the job runs."
    )
    task_id: str | None = Field(
        None,
        description="A label of the job; with `detach`, the task's id (letters, digits and "
        "_ . -, at most 64; made by the server when not given).",
    )
    audit_mode: Any = Field(
        None, description="The original's audit switch: accepted, ignored (no audit trail yet)."
    )
    push_interval: int | None = Field(
        None,
        ge=5,
        le=3600,
        description="A detached task's log is pushed to the webhook every this many seconds.",
    )

    def notices(self) -> list[str]:
        """What this server accepts from the request but does not do: said in the job's
        ``notices`` (and logged), never ignored in silence."""
        ignored = {"audit_mode": "this server keeps no audit trail yet"}
        return [
            f"{name} is accepted and ignored: {why}"
            for name, why in ignored.items()
            if getattr(self, name) is not None
        ]

    device_name: str | None = None

    _driver = field_validator("driver")(classmethod(lambda cls, v, info: _check_driver(v, info)))
    # Declared after `driver` (the checks read it): driver options are allowlisted per driver.
    _connection_options = field_validator("connection_args")(
        classmethod(lambda cls, v, info: _check_connection_options(v, info))
    )
    _driver_options = field_validator("driver_args")(
        classmethod(lambda cls, v, info: _check_driver_options(v, info))
    )

    @model_validator(mode="after")
    def _not_yet(self) -> ExecutionRequest:
        """Refuse what this server does not do yet, rather than ignore it silently."""
        unsupported = [
            name
            for name, given in (
                ("dry_run (napalm only)", self.dry_run and self.driver != "napalm"),
            )
            if given
        ]
        if unsupported:
            raise ValueError(f"not supported by this server yet: {', '.join(unsupported)}")
        if self.push_interval is not None and not self.detach:
            raise ValueError("push_interval applies to detached tasks: give detach: true too")
        if self.detach and (self.config not in (None, "", []) or self.file_transfer):
            raise ValueError("a detached task runs a command: give command, not config")
        if self.detach and self.task_id is not None and not DETACHED_TASK_ID.match(self.task_id):
            raise ValueError(
                "a detached task's task_id takes letters, digits and _ . - (at most 64), "
                "starting with a letter or digit"
            )
        return self

    @model_validator(mode="after")
    def _one_payload(self) -> ExecutionRequest:
        given = [n for n in ("command", "config") if getattr(self, n) not in (None, "", [])]
        if len(given) == 2:
            raise ValueError("give either command or config, not both")
        if self.file_transfer is not None:
            if given:
                raise ValueError("give a file_transfer or a command/config, not both")
            spec = self.file_transfer
            if spec.operation == "upload" and not self.staged_file_id and not spec.local_path:
                raise ValueError(
                    "an upload needs the file: send the request as multipart with a `file` "
                    "part, or name it with file_transfer.local_path (on the worker)"
                )
            if spec.operation == "upload" and self.staged_file_id and spec.recursive:
                raise ValueError("a recursive upload takes local_path, not a multipart file")
            return self
        if self.script_content is not None:
            if given:
                raise ValueError("give driver_args.script_content or a command/config, not both")
            return self
        if not given:
            raise ValueError(
                "give a command, a config, a file_transfer or driver_args.script_content"
            )
        for name in given:
            value = getattr(self, name)
            if isinstance(value, dict) and self.rendering is None:
                raise ValueError(f"{name} may be a mapping only together with rendering")
        return self

    def lines(self) -> list[str]:
        """The command or config lines as a list (a string is split on newlines)."""
        if self.file_transfer is not None:
            return [f"{self.file_transfer.operation} {self.file_transfer.remote_path}"]
        if self.script_content is not None:
            return ["script_content"]
        value = self.command if self.command not in (None, "", []) else self.config
        if value is None:
            return []
        if isinstance(value, str):
            return [line for line in value.splitlines() if line.strip()] or [value]
        if isinstance(value, list):
            return [str(v) for v in value]
        return [str(v) for v in value.values()]

    @property
    def script_content(self) -> str | None:
        """The script of ``driver_args`` (paramiko), run in place of a command."""
        value = (self.driver_args or {}).get("script_content")
        return value if isinstance(value, str) else None

    @property
    def is_config(self) -> bool:
        return self.config not in (None, "", [])

    @property
    def changes_device(self) -> bool:
        """Whether the job may change the device (config lines, a file transfer, an
        upload): such a job needs an API key with the ``config`` scope, others ``exec``."""
        return self.is_config or self.file_transfer is not None or bool(self.staged_file_id)


class BulkDevice(BaseModel):
    """One device of a bulk request: a host plus overrides of the shared connection args."""

    model_config = ConfigDict(extra="allow")

    host: str = Field(..., min_length=1)
    command: Payload | None = None
    config: Payload | None = None


class BulkExecutionRequest(ExecutionRequest):
    """`ExecutionRequest` fields shared by every device, plus the device list."""

    devices: list[dict[str, Any]] = Field(..., min_length=1, max_length=10000)
    #: As in the original NetPulse: a bulk job may wait 600 s in the queue by default (many
    #: jobs share the workers), a single job ``job.ttl``.
    ttl: int | None = Field(600, ge=1, le=86400)
    # Shared connection arguments may be partial (each device adds its host).
    connection_args: ConnectionArgs | dict[str, Any] = Field(  # type: ignore[assignment]
        default_factory=dict
    )

    @model_validator(mode="after")
    def _one_payload(self) -> BulkExecutionRequest:
        return self


class TestRequest(BaseModel):
    """`POST /device/test`: can we log in to this device?"""

    driver: str
    connection_args: ConnectionArgs
    credential: CredentialRef | None = None

    _driver = field_validator("driver")(classmethod(lambda cls, v, info: _check_driver(v, info)))
    _connection_options = field_validator("connection_args")(
        classmethod(lambda cls, v, info: _check_connection_options(v, info))
    )
