"""Checksums of transferred files, computed on both ends."""

from __future__ import annotations

import hashlib
import re
import shlex

HEX64 = re.compile(r"\b([0-9a-f]{64})\b")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def remote_sha256_command(path: str) -> str:
    """A POSIX command printing the file's SHA-256 (Linux hosts; most NOSes lack it)."""
    return f"sha256sum -- {shlex.quote(path)}"


def parse_sha256(output: str) -> str | None:
    match = HEX64.search(output or "")
    return match.group(1) if match else None
