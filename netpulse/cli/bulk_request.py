"""The `POST /device/bulk` bodies of `netpulse exec`: the shared fields, one device entry per
row, and how the rows are cut into requests.

Why a request never holds two rows with the same host: the reply lists a refused device by
its ``host`` alone (``{"host", "reason"}``) and the queued jobs in order, so with one row per
host each refusal belongs to exactly one row and each job to the row it was made for. Two
rows of one address (devices behind one address on different ports) go in different
requests; a fleet of distinct addresses fills every request to ``--chunk-size``.

Secrets: the password read from stdin goes once into the shared ``connection_args``; a row's
own ``Pass`` and ``Secret`` go into its device entry. Nothing here prints or logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from netpulse.cli.bulk_rows import DeviceRow

PayloadKind = Literal["command", "config"]


class OptionsError(ValueError):
    """The command line cannot make a valid request; the message names the option."""


@dataclass(frozen=True)
class JobSpec:
    """What every row's job shares, from the command line."""

    driver: str
    kind: PayloadKind
    payload: list[str] | dict[str, Any]
    enable: bool = False
    save: bool = False
    queue_strategy: str | None = None
    ttl: int | None = None
    driver_args: dict[str, Any] = field(default_factory=dict)
    connection_args: dict[str, Any] = field(default_factory=dict, repr=False)
    rendering: dict[str, Any] | None = None
    parsing: dict[str, Any] | None = None
    webhook_url: str | None = None
    credential: str | None = None
    #: The password of every row (``--password-stdin``); the rows' own are then not sent.
    password: str | None = field(default=None, repr=False)

    def shared_body(self) -> dict[str, Any]:
        """The bulk body without ``devices``."""
        body: dict[str, Any] = {"driver": self.driver, self.kind: self.payload}
        connection = dict(self.connection_args)
        if self.password is not None:
            connection["password"] = self.password
        if connection:
            body["connection_args"] = connection
        if self.enable:
            body["enable_mode"] = True
        if self.save:
            body["save"] = True
        if self.driver_args:
            body["driver_args"] = self.driver_args
        optional = {
            "queue_strategy": self.queue_strategy,
            "ttl": self.ttl,
            "rendering": self.rendering,
            "parsing": self.parsing,
            "webhook": {"url": self.webhook_url} if self.webhook_url else None,
            "credential": {"name": "local", "ref": self.credential} if self.credential else None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def device_entry(self, row: DeviceRow) -> dict[str, Any]:
        """The row's entry in ``devices``: its host and the connection arguments it gives."""
        entry: dict[str, Any] = {"host": row.host, "port": row.port}
        own = {
            "device_type": row.device_type,
            "username": row.username,
            "password": None if self.password is not None else row.password,
            "secret": row.secret,
            "keepalive": row.keepalive,
        }
        entry.update({k: v for k, v in own.items() if v is not None})
        return entry

    def body(self, rows: list[DeviceRow]) -> dict[str, Any]:
        return {**self.shared_body(), "devices": [self.device_entry(r) for r in rows]}

    def check(self) -> None:
        """Check the shared fields with the server's own model, before anything is sent, so
        a bad ``--ttl`` or ``--webhook`` stops the run at once. Driver and plugin checks are
        the server's (it knows which are installed). Messages name the field, never a value
        (the connection arguments may hold a password)."""
        # Imported here: the request models take a quarter of a second to import, which
        # every `netpulse` command would otherwise pay.
        from pydantic import ValidationError

        from netpulse.models.request import BulkExecutionRequest

        try:
            BulkExecutionRequest.model_validate({**self.shared_body(), "devices": [{"host": "-"}]})
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}" if where else message)
            raise OptionsError("; ".join(problems)) from None


def chunks(rows: list[DeviceRow], size: int) -> list[list[DeviceRow]]:
    """The rows cut into requests of at most ``size``, no host twice in one request.

    Rows keep their order as far as that allows: a row goes into the first request that has
    room and does not hold its host yet, and never before an earlier row of the same host.
    """
    if size < 1:
        raise ValueError(f"a request holds at least one row, not {size}")
    out: list[list[DeviceRow]] = []
    hosts: list[set[str]] = []
    after: dict[str, int] = {}  # host -> the first request its next row may go into
    first_open = 0  # every request before this one is full
    for row in rows:
        index = max(after.get(row.host, 0), first_open)
        while index < len(out) and (len(out[index]) >= size or row.host in hosts[index]):
            index += 1
        if index == len(out):
            out.append([])
            hosts.append(set())
        out[index].append(row)
        hosts[index].add(row.host)
        after[row.host] = index + 1
        while first_open < len(out) and len(out[first_open]) >= size:
            first_open += 1
    return out
