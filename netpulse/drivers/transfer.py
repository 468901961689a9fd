"""A file transfer as a job runs it: every field of ``file_transfer``, for every driver.

A driver gives three primitives (:class:`RemoteFiles`): read a remote file, write one
(maybe appending), and run a shell command. Everything else is built here once, on top of
POSIX commands of a Linux host (``stat``, ``<alg>sum``, ``head -c``, ``chmod``, ``find``):
``overwrite``, ``sync_mode`` (skip when the hashes match), ``resume`` (continue from the
remote size once the part there is proven to be ours), ``recursive`` directories,
``hash_algorithm`` and ``verify``, ``chmod``, ``execute_after_upload`` and
``cleanup_after_exec``. A device without a shell (``run`` is None) gets a plain copy.

Every outcome is a result row (``exit_status`` 0 or 1 with the reason in ``stderr``); only
a lost session raises (the driver's ``DeviceConnectionError``).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from netpulse.models.job import DriverExecutionResult
from netpulse.models.request import FileTransfer

__all__ = [
    "RemoteFiles",
    "Shell",
    "TransferOutcome",
    "digest",
    "options_needing_a_shell",
    "perform",
    "remote_hash_command",
]

#: ``(stdout, stderr, exit status)`` of a shell command on the device.
Shell = Callable[[str], tuple[str, str, int]]
#: What a result row is built with: the driver's ``result`` (command, started, ...).
MakeResult = Callable[..., DriverExecutionResult]


class RemoteFiles(Protocol):
    """What a driver lends for a transfer. ``OSError`` means the device refused (no such
    file, permission): reported in the row, never raised further."""

    #: A shell on the device, or None when it has none (network OSes over SCP).
    run: Shell | None

    def read(self, path: str, offset: int = 0) -> bytes: ...

    def write(self, path: str, data: bytes, *, append: bool, chunk_size: int) -> None: ...


def options_needing_a_shell(spec: FileTransfer) -> list[str]:
    """The options of ``spec`` that only a device with a shell can honour."""
    wanted = {
        "resume": spec.resume,
        "recursive": spec.recursive,
        "sync_mode": spec.sync_mode == "hash",
        "overwrite": not spec.overwrite and spec.operation == "upload",
        "chmod": spec.chmod is not None,
        "execute_after_upload": spec.execute_after_upload,
    }
    return [name for name, given in wanted.items() if given]


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def remote_hash_command(path: str, algorithm: str, first_bytes: int | None = None) -> str:
    """A POSIX command printing the hash of the file (or of its first bytes)."""
    quoted = shlex.quote(path)
    if first_bytes is None:
        return f"{algorithm}sum -- {quoted}"
    return f"head -c {int(first_bytes)} -- {quoted} | {algorithm}sum"


_HEX = re.compile(r"\b([0-9a-f]{32,128})\b")


@dataclass
class TransferOutcome:
    """The rows of the job (the copy, then the command run after it and the clean-up),
    and a download's bytes (one file) for the client to fetch."""

    rows: list[DriverExecutionResult] = field(default_factory=list)
    downloaded: bytes | None = None


@dataclass
class _Copy:
    """One file's copy in progress: what the row of the job reports."""

    spec: FileTransfer
    files: RemoteFiles
    make: MakeResult
    started: float = field(default_factory=time.monotonic)

    @property
    def label(self) -> str:
        return f"{self.spec.operation} {self.spec.remote_path}"

    def failed(self, reason: str, **metadata: Any) -> DriverExecutionResult:
        return self.make(self.label, self.started, stderr=reason, exit_status=1, **metadata)

    def remote_hash(self, path: str, first_bytes: int | None = None) -> str | None:
        if self.files.run is None:
            return None
        algorithm = self.spec.hash_algorithm
        out, _, status = self.files.run(remote_hash_command(path, algorithm, first_bytes))
        match = _HEX.search(out) if status == 0 else None
        return match.group(1) if match else None

    def remote_size(self, path: str) -> int | None:
        """The remote file's size; None when it does not exist (or no shell can tell)."""
        if self.files.run is None:
            return None
        out, _, status = self.files.run(f"stat -c %s -- {shlex.quote(path)}")
        return int(out.strip()) if status == 0 and out.strip().isdigit() else None

    def metadata(self, data: bytes, **extra: Any) -> dict[str, Any]:
        algorithm = self.spec.hash_algorithm
        local = digest(data, algorithm)
        meta: dict[str, Any] = {"size": len(data), "hash_algorithm": algorithm, "hash": local}
        if algorithm == "sha256":
            meta["sha256"] = local  # the name earlier versions reported
        return {**meta, **extra}


def perform(
    spec: FileTransfer, files: RemoteFiles, make: MakeResult, data: bytes | None
) -> TransferOutcome:
    """Run ``spec``: ``data`` is an upload's file (None for a directory upload or a
    download); ``local`` paths were confined to the device files directory already."""
    if spec.recursive:
        return _directory(spec, files, make)
    copy = _Copy(spec, files, make)
    try:
        if spec.operation == "download":
            return _download(copy)
        return _upload(copy, data or b"")
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return TransferOutcome([copy.failed(f"{spec.remote_path}: {reason}")])


def _upload(copy: _Copy, data: bytes) -> TransferOutcome:
    spec, files, path = copy.spec, copy.files, copy.spec.remote_path
    existing = copy.remote_size(path)
    if existing is not None and not spec.overwrite and not spec.resume:
        return TransferOutcome(
            [copy.failed(f"{path} exists on the device and overwrite is false: not sent")]
        )
    local = digest(data, spec.hash_algorithm)
    if spec.sync_mode == "hash" and existing is not None and copy.remote_hash(path) == local:
        row = copy.make(
            copy.label,
            copy.started,
            stdout="unchanged: the device has this file (hashes match), not sent",
            **copy.metadata(data, skipped=True, verified=True),
        )
        return TransferOutcome([row, *_after_upload(copy)])
    offset = 0
    resumable = spec.resume and existing is not None and 0 < existing <= len(data)
    # Continue only if what is there is the start of this very file.
    if resumable and copy.remote_hash(path, existing) == digest(
        data[: existing or 0], spec.hash_algorithm
    ):
        offset = existing or 0
    if offset < len(data) or not data:
        files.write(path, data[offset:], append=offset > 0, chunk_size=spec.chunk_size)
    if spec.chmod is not None and files.run is not None:
        _, err, status = files.run(f"chmod {spec.chmod} -- {shlex.quote(path)}")
        if status != 0:
            return TransferOutcome([copy.failed(f"chmod {spec.chmod} failed: {err.strip()}")])
    checked = _verified(copy, data)
    if isinstance(checked, DriverExecutionResult):
        return TransferOutcome([checked])
    row = copy.make(
        copy.label,
        copy.started,
        stdout=f"{len(data) - offset} bytes sent" + _resumed(offset),
        **copy.metadata(data, verified=checked, resumed_from=offset),
    )
    return TransferOutcome([row, *_after_upload(copy)])


def _resumed(offset: int) -> str:
    return f" (resumed at byte {offset})" if offset else ""


def _verified(copy: _Copy, data: bytes) -> bool | DriverExecutionResult:
    """True/False (checked, or the device cannot tell), or the failed row of a mismatch."""
    if not copy.spec.verify:
        return False
    remote = copy.remote_hash(copy.spec.remote_path)
    if remote is None:
        return False
    local = digest(data, copy.spec.hash_algorithm)
    if remote != local:
        return copy.failed(
            f"checksum mismatch: local {local}, remote {remote}",
            **copy.metadata(data, verified=False),
        )
    return True


def _after_upload(copy: _Copy) -> list[DriverExecutionResult]:
    """``execute_after_upload``: run the command (default: the file itself), then remove
    the file unless ``cleanup_after_exec`` is false. One row each."""
    spec, run = copy.spec, copy.files.run
    if not spec.execute_after_upload or run is None:
        return []
    command = spec.execute_command or shlex.quote(spec.remote_path)
    started = time.monotonic()
    out, err, status = run(command)
    rows = [copy.make(command, started, out, err, status)]
    if spec.cleanup_after_exec:
        cleanup = f"rm -f -- {shlex.quote(spec.remote_path)}"
        started = time.monotonic()
        out, err, status = run(cleanup)
        rows.append(copy.make(cleanup, started, out, err, status))
    return rows


def _download(copy: _Copy) -> TransferOutcome:
    spec = copy.spec
    local = Path(spec.local_path) if spec.local_path else None
    if local is not None and local.exists() and not spec.overwrite and not spec.resume:
        return TransferOutcome(
            [copy.failed(f"{local} exists on the worker and overwrite is false")]
        )
    offset = 0
    if spec.resume and local is not None and local.is_file():
        have = local.read_bytes()
        if have and copy.remote_hash(spec.remote_path, len(have)) == digest(
            have, spec.hash_algorithm
        ):
            offset = len(have)
    data = copy.files.read(spec.remote_path, offset)
    if offset:
        data = local.read_bytes() + data if local is not None else data
    checked = _verified(copy, data)
    if isinstance(checked, DriverExecutionResult):
        return TransferOutcome([checked])
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
    row = copy.make(
        copy.label,
        copy.started,
        stdout=f"{len(data) - offset} bytes received"
        + (f" (resumed at {offset})" if offset else ""),
        **copy.metadata(data, verified=checked, resumed_from=offset),
    )
    return TransferOutcome([row], data)


def _directory(spec: FileTransfer, files: RemoteFiles, make: MakeResult) -> TransferOutcome:
    """``recursive``: every file under ``local_path`` (upload) or ``remote_path``
    (download), each copied with the same options; one row for the tree."""
    started = time.monotonic()
    label = f"{spec.operation} {spec.remote_path} (recursive)"
    run = files.run
    if run is None or spec.local_path is None:
        reason = "a recursive transfer needs local_path and a device with a shell"
        return TransferOutcome([make(label, started, stderr=reason, exit_status=1)])
    local_root, remote_root = Path(spec.local_path), spec.remote_path.rstrip("/") or "/"
    if spec.operation == "upload":
        names = sorted(str(p.relative_to(local_root)) for p in local_root.rglob("*") if p.is_file())
        dirs = sorted({str(Path(remote_root, n).parent) for n in names} | {remote_root})
        _, err, status = run("mkdir -p -- " + " ".join(shlex.quote(d) for d in dirs))
        if status != 0:
            return TransferOutcome([make(label, started, stderr=err.strip(), exit_status=1)])
    else:
        out, err, status = run(f"cd -- {shlex.quote(remote_root)} && find . -type f")
        if status != 0:
            return TransferOutcome([make(label, started, stderr=err.strip(), exit_status=1)])
        names = sorted(line[2:] for line in out.splitlines() if line.startswith("./"))
    failures, copied, skipped, size = [], 0, 0, 0
    for name in names:
        one = spec.model_copy(
            update={
                "recursive": False,
                "remote_path": f"{remote_root}/{name}",
                "local_path": str(local_root / name),
                "execute_after_upload": False,
            }
        )
        data = (local_root / name).read_bytes() if spec.operation == "upload" else None
        outcome = perform(one, files, make, data)
        row = outcome.rows[0]
        if row.exit_status != 0:
            failures.append(f"{name}: {row.stderr}")
            continue
        copied += 1
        skipped += bool(row.metadata.get("skipped"))
        size += int(row.metadata.get("size") or 0)
    metadata = {"files": copied, "skipped": skipped, "size": size, "failed": len(failures)}
    text = f"{copied} files ({size} bytes), {skipped} unchanged"
    return TransferOutcome(
        [
            make(
                label,
                started,
                stdout=text,
                stderr="\n".join(failures),
                exit_status=1 if failures else 0,
                **metadata,
            )
        ]
    )
