"""One settings object for every NetPulse process.

Values come, highest priority first, from ``NETPULSE_*`` environment variables (nested fields
with ``__``, e.g. ``NETPULSE_REDIS__URL``), then the YAML file named by
``NETPULSE_CONFIG_FILE``, then the defaults below. A wrong value stops start-up with a
sentence naming the setting (see :func:`load_settings`).
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from netpulse import config_original
from netpulse.models.audit import AuditMode
from netpulse.models.endpoint import EndpointSpec
from netpulse.models.signing_secret import validate_secret, validate_signing_key
from netpulse.runtime.redis_conn import parse_redis_url
from netpulse.schedulers import registry as schedulers

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """A setting is wrong; the message names it so the operator can fix it."""


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(9000, ge=1, le=65535)
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-KEY"
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="Largest request body read (multipart uploads: the file limit instead).",
    )
    max_json_depth: int = Field(
        64, ge=4, le=512, description="Deepest nesting of arrays and objects in a JSON body."
    )
    max_device_tests: int = Field(
        8, ge=1, le=256, description="`POST /device/test` calls running at once; more get 503."
    )
    device_test_timeout: float = Field(
        30.0, ge=1, le=600, description="Longest `POST /device/test` answer, in seconds."
    )


class RedisSettings(BaseModel):
    url: str | None = Field(
        None,
        description=(
            "Redis URL: redis://, rediss://, unix:// or "
            "redis+sentinel://host:port[,host:port...]/<master name>[/<db>]. "
            "Unset: `netpulse up` starts a private redis-server."
        ),
    )

    @field_validator("url")
    @classmethod
    def _parsable(cls, value: str | None) -> str | None:
        """Refuse a URL the connection factory could not use now, at start, rather than on
        the first connection (which, for a Sentinel URL, may be minutes later)."""
        if value is not None:
            parse_redis_url(value)  # its ValueError says what is wrong, password masked
        return value


class JobSettings(BaseModel):
    ttl: int = Field(300, ge=1, le=86400, description="Seconds a job may wait in the queue.")
    execution_timeout: int = Field(300, ge=1, le=86400)
    result_ttl: int = Field(300, ge=60, le=604800)


class WorkerSettings(BaseModel):
    pool_size: int = Field(
        default_factory=lambda: max(4, 4 * (os.cpu_count() or 1)),
        ge=1,
        le=512,
        description="FIFO worker processes. SSH jobs wait on the network, so more than cores.",
    )
    fifo_queue: str = "FifoQ"


class NodeSettings(BaseModel):
    """Worker nodes: processes holding warm sessions for pinned jobs."""

    capacity: int = Field(500, ge=1, le=100000, description="Devices one node may hold.")
    threads: int = Field(32, ge=1, le=1024, description="Jobs one node runs at once.")
    idle_timeout: float = Field(300.0, ge=1, description="Close a session idle this long (s).")
    probe_interval: float = Field(30.0, ge=0.1, description="Seconds between session probes.")
    device_release_seconds: float = Field(
        30.0,
        ge=1,
        description="A device the node holds no session for and that has no job waiting "
        "or running leaves the node's devices after this long (s).",
    )
    scheduler: str = Field("least_load", description="Scheduler plugin placing new devices.")

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value not in schedulers.names():
            valid = ", ".join(schedulers.names())
            raise ValueError(f"unknown scheduler {value!r}; valid: {valid}")
        return value

    pinned_concurrency: int = Field(1, ge=1, le=64, description="Pinned jobs per device at once.")
    fifo_concurrency: int = Field(2, ge=1, le=64, description="FIFO jobs per device at once.")


class WebhookSettings(BaseModel):
    signing_secret: SecretStr | None = None
    previous_signing_secrets: list[SecretStr] = Field(
        default_factory=list,
        description="Old secrets still signed with during a key rotation (remove when done).",
    )
    asymmetric_signing_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Ed25519 keys (whsk_...): every event is also signed v1a with each; "
        "receivers verify with the public keys of GET /webhooks/signing-keys.",
    )
    allow_cidrs: list[str] = Field(default_factory=list)
    deny_cidrs: list[str] = Field(default_factory=list)
    deny_private: bool = False
    retry_intervals: list[float] | None = None
    jitter: float = Field(0.2, ge=0, le=1)
    max_output_bytes: int = Field(
        256 * 1024, ge=1024, description="Device output kept in one event; more is cut."
    )
    retention_seconds: int = Field(7 * 86400, ge=60)
    max_in_flight: int = Field(256, ge=1, le=10000)
    max_in_flight_per_origin: int = Field(8, ge=1, le=1000)
    origin_failure_threshold: int = Field(5, ge=1)
    origin_backoff_seconds: float = Field(30.0, ge=0)
    lease_seconds: float = Field(
        180.0, ge=5, description="A claimed delivery returns to the queue after this long."
    )
    niceness: int = Field(
        0,
        ge=0,
        le=19,
        description="The delivery process's CPU niceness: above 0, device workers go first "
        "when CPU is short, and events wait (each level adds latency under load).",
    )
    endpoints: list[EndpointSpec] = Field(
        default_factory=list,
        description="Endpoints kept in this file (GitOps), each with its own `id`; the API "
        "shows them and may only disable or enable them.",
    )
    notify_endpoint: str | None = Field(
        None,
        description="Id of the endpoint the operator is told through: it gets every "
        "`endpoint.disabled` and `endpoint.recovered` notice whatever its filters.",
    )
    endpoint_disable_after_seconds: float = Field(
        5 * 86400,
        gt=0,
        description="An endpoint whose every attempt failed for this long is disabled.",
    )
    endpoint_disable_after_failed_deliveries: int = Field(
        50,
        ge=1,
        description="An endpoint whose last N deliveries all failed (retries exhausted) is "
        "disabled.",
    )

    @field_validator("signing_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            validate_secret(value.get_secret_value())
        return value

    @field_validator("previous_signing_secrets")
    @classmethod
    def _old_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            validate_secret(secret.get_secret_value())
        return value

    @field_validator("asymmetric_signing_keys")
    @classmethod
    def _signing_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            try:
                validate_signing_key(key.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"webhooks.asymmetric_signing_keys: {exc}") from None
        return value

    @field_validator("endpoints")
    @classmethod
    def _endpoint_ids(cls, value: list[EndpointSpec]) -> list[EndpointSpec]:
        seen: set[str] = set()
        for spec in value:
            if spec.id is None:
                raise ValueError(f"webhooks.endpoints: the endpoint for {spec.url} needs an id")
            if spec.id in seen:
                raise ValueError(f"webhooks.endpoints: the id {spec.id!r} is used twice")
            seen.add(spec.id)
        return value

    @field_validator("allow_cidrs", "deny_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP network (CIDR)") from None
        return value

    @field_validator("retry_intervals")
    @classmethod
    def _intervals(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (not value or any(v < 0 for v in value)):
            raise ValueError("retry intervals must be a non-empty list of seconds >= 0")
        return value


class TemplateSettings(BaseModel):
    """Where templates may come from (inline text is always allowed)."""

    directory: Path | None = Field(
        None, description="Templates named `file:<path>` are read from here only."
    )
    allow_http: bool = Field(
        False, description="Fetch `http(s)://` templates (behind the webhook SSRF guard)."
    )
    max_bytes: int = Field(1024 * 1024, ge=1024, description="Largest template accepted.")
    timeout_seconds: float = Field(
        5.0, ge=0.1, le=300, description="Longest a render or parse may take; then stopped."
    )
    memory_limit_mb: int = Field(
        256, ge=32, le=65536, description="Memory one render or parse may use, in MiB."
    )
    sandbox_workers: int = Field(
        2, ge=1, le=64, description="Processes that run template work for the API."
    )


class DriverSettings(BaseModel):
    """What jobs may ask the device drivers to do on the worker host."""

    files_dir: Path | None = Field(
        None,
        description=(
            "The only directory driver options naming a file (key_file, key_filename, "
            "ssh_config_file, certificates...) may point into. Unset: <data_dir>/device-files."
        ),
    )
    allow_ssh_agent: bool = Field(
        False,
        description=(
            "Whether a paramiko job may set connection_args.allow_agent: the job then logs in "
            "with the keys of the SSH agent the worker process sees (SSH_AUTH_SOCK)."
        ),
    )


def _fernet_key(value: SecretStr) -> SecretStr:
    """A key as ``cryptography``'s Fernet takes it: 32 bytes, url-safe base64 (44 chars)."""
    import base64
    import binascii

    try:
        raw = base64.urlsafe_b64decode(value.get_secret_value().strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "security.encryption_keys: each key must be 32 random bytes in url-safe base64 "
            "(44 characters); make one with `netpulse encryption-key`"
        )
    return SecretStr(value.get_secret_value().strip())


class SecuritySettings(BaseModel):
    """How secrets are kept at rest (docs/security.md)."""

    encryption_keys: list[Annotated[SecretStr, AfterValidator(_fernet_key)]] = Field(
        default_factory=list,
        description=(
            "Keys that seal secrets before they are stored in Redis: the first seals, all "
            "open (add a new key first to rotate). Empty: the key in "
            "<data_dir>/encryption.key, made on first use (one machine)."
        ),
    )


class DetachedSettings(BaseModel):
    """Detached tasks: long-running commands on Linux hosts, followed by ``netpulse worker
    detached`` (docs/detached-tasks.md)."""

    max_log_bytes: int = Field(
        4 * 1024 * 1024,
        ge=4096,
        description="Log bytes kept per task in Redis; past it the oldest half is dropped.",
    )
    read_chunk_bytes: int = Field(
        256 * 1024, ge=1024, description="Most log bytes read from a host in one look."
    )
    host_lost_seconds: float = Field(
        300.0, ge=5, description="A host unreachable this long fails its tasks."
    )
    max_tasks_per_host: int = Field(
        20, ge=1, le=10000, description="Running detached tasks one host may have."
    )
    lease_seconds: float = Field(
        60.0, ge=5, description="A task a follower took is looked at again after this."
    )
    retention_seconds: int = Field(
        7 * 86400, ge=60, description="How long an ended task's record and log are kept."
    )


class SupervisorSettings(BaseModel):
    """`netpulse up`: when a child that keeps dying makes it give up instead of restarting it."""

    max_restarts: int = Field(
        5, ge=0, le=1000, description="Deaths of one child within the window that are restarted."
    )
    restart_window_seconds: float = Field(
        600.0, ge=1, description="One death more than max_restarts within this stops `up`."
    )
    nodes: int | Literal["auto"] = Field(
        "auto",
        description="Worker node processes `netpulse up` starts: a number, or auto (one per "
        "CPU core, so warm sessions use every core: a node's job threads share one GIL).",
    )

    @field_validator("nodes")
    @classmethod
    def _node_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 64:
            raise ValueError("supervisor.nodes is auto or 1 to 64")
        return value

    def node_count(self) -> int:
        """How many nodes to start on this machine."""
        if self.nodes == "auto":
            return max(os.cpu_count() or 1, 1)
        return int(self.nodes)


class AuditSettings(BaseModel):
    """The audit trail: every submission and job end, archived from a Redis stream into a
    database by ``netpulse worker audit`` (docs/audit.md)."""

    mode: AuditMode = Field(
        AuditMode.FULL,
        description="full: with the device output (capped); metadata: without output; "
        "none: only that a job ran (id, time, key).",
    )
    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store (postgresql+psycopg://user@host/db for several "
        "machines). Unset: SQLite in <data_dir>/audit.db.",
    )
    max_output_bytes: int = Field(
        64 * 1024, ge=0, le=16 * 1024 * 1024, description="Output kept per command."
    )
    retention_days: int = Field(365, ge=1, description="Entries older than this are deleted.")
    stream_max_len: int = Field(
        200_000,
        ge=1000,
        description="Records the stream keeps while the archiver cannot write (older ones are "
        "dropped past it; the log and the metric warn at 80 %).",
    )
    batch_size: int = Field(500, ge=1, le=10_000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and "://" not in value:
            raise ValueError("audit.url must be an SQLAlchemy URL such as postgresql+psycopg://...")
        return value


class Settings(BaseSettings):
    """All of NetPulse's configuration."""

    # hide_input_in_errors: values such as redis.url or the API key may be secrets, and a
    # validation error would otherwise quote them.
    model_config = SettingsConfigDict(
        env_prefix="NETPULSE_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    data_dir: Path = Path(".netpulse")
    log_level: str = "INFO"
    server: ServerSettings = Field(default_factory=ServerSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    job: JobSettings = Field(default_factory=JobSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    node: NodeSettings = Field(default_factory=NodeSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)
    drivers: DriverSettings = Field(default_factory=DriverSettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    detached: DetachedSettings = Field(default_factory=DetachedSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    credentials: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Options of each credential provider, by provider name (credentials.vault_kv.url "
            "...); each provider checks its own (docs/credentials.md)."
        ),
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def redis_url(self) -> str:
        if not self.redis.url:
            raise ConfigError(
                "redis.url is not set (NETPULSE_REDIS__URL); `netpulse up` sets it when it "
                "starts its private Redis"
            )
        return self.redis.url


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by NETPULSE_CONFIG_FILE (nested like the settings)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("NETPULSE_CONFIG_FILE")
        if not path:
            return {}
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"NETPULSE_CONFIG_FILE={path} cannot be read: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"NETPULSE_CONFIG_FILE={path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"NETPULSE_CONFIG_FILE={path} must hold a mapping at the top")
        data, notices = config_original.translate(data)
        for notice in notices:
            log.warning("%s: %s", path, notice)
        return data


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable sentence per setting."""
    try:
        return Settings(**overrides)
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc} (lists are given as JSON)") from None
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"])
            env = "NETPULSE_" + "__".join(str(p).upper() for p in err["loc"])
            problems.append(f"setting {name} ({env}): {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
