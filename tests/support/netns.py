"""A network namespace of the test's own, linked to this host by a veth pair.

For the jump-host tests: a server inside the namespace on its own loopback (127.0.0.1
*there*) cannot be reached from the host at all, only from a server in the namespace that
listens on the veth address too. Traffic stays between this host and the namespace the
test created. Needs root and ``ip`` (Debian package iproute2).
"""

from __future__ import annotations

import os
import subprocess
from types import TracebackType
from typing import Self

__all__ = ["PrivateNetwork"]

#: Link names are at most 15 characters; one pair per index, taken with `ip link add`.
_MAX_INDEX = 200


class PrivateNetwork:
    """``ip netns add`` + a veth pair: ``host_address`` here, ``inside_address`` there."""

    def __init__(self) -> None:
        self.name = ""
        self.host_address = ""
        self.inside_address = ""
        self._link = ""

    def start(self) -> Self:
        self.name = f"netpulse-test-{os.getpid()}"
        _ip("netns", "add", self.name)
        try:
            index = self._take_link_pair()
            # 10.213.<index>.0/30: a subnet that lives only on this veth pair.
            self.host_address, self.inside_address = f"10.213.{index}.1", f"10.213.{index}.2"
            _ip("addr", "add", f"{self.host_address}/30", "dev", f"{self._link}a")
            _ip("link", "set", f"{self._link}a", "up")
            _ip("link", "set", f"{self._link}b", "netns", self.name)
            inside = ["netns", "exec", self.name, "ip"]
            _ip(*inside, "addr", "add", f"{self.inside_address}/30", "dev", f"{self._link}b")
            _ip(*inside, "link", "set", f"{self._link}b", "up")
            _ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.stop()
            raise
        return self

    def _take_link_pair(self) -> int:
        """The first free index (an existing link name makes `ip link add` fail)."""
        for index in range(_MAX_INDEX):
            link = f"npt{index}"
            result = subprocess.run(
                ["ip", "link", "add", f"{link}a", "type", "veth", "peer", "name", f"{link}b"],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0:
                self._link = link
                return index
            if "File exists" not in result.stderr:
                raise RuntimeError(f"ip link add failed: {result.stderr.strip()}")
        raise RuntimeError(f"no free veth name npt0..npt{_MAX_INDEX - 1}")

    def stop(self) -> None:
        """Remove the pair and the namespace (deleting one end removes both). Idempotent."""
        if self._link:
            subprocess.run(["ip", "link", "del", f"{self._link}a"], capture_output=True)
            self._link = ""
        if self.name:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.name = ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
