"""Logging hygiene for the simulated devices.

FakeNOS and its paramiko server side report every ordinary client logout as a failure:
ERROR "channel write error: Socket is closed", WARNING "watchdog - session not alive",
ERROR "Socket exception: Connection reset by peer". Left alone, each netmiko
``disconnect()`` against the lab looks broken in ``netpulse lab`` output and in test
logs. These filters log exactly those messages at DEBUG instead; everything else,
including real server errors, passes unchanged.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["quiet_fakenos_logging"]

_FAKENOS_SERVER_LOGGER = "fakenos.plugins.servers.ssh_server_paramiko"


def _demote(record: logging.LogRecord) -> bool:
    """Turn ``record`` into a DEBUG record; keep it only if its logger wants DEBUG."""
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class _FakeNosDisconnectFilter(logging.Filter):
    """Demote FakeNOS's messages about a client that has logged out."""

    _BENIGN = (
        "ssh_server.channel_to_shell_tap channel write error",
        "ssh_server.shell_to_channel_tap channel write error",
        "SSH channel is not active",
        "Connection reset by peer, exiting",
        "ParamikoSshServer.watchdog",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith(self._BENIGN):
            return _demote(record)
        return True


class _ServerResetFilter(logging.Filter):
    """Demote "connection reset" from server-side paramiko transports only.

    ``paramiko.transport`` is shared with NetPulse's own SSH clients, whose resets do
    matter; a paramiko ``Transport`` is the thread that logs, and server-side ones
    (FakeNOS's) have ``server_mode`` set.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if message.startswith("Socket exception: Connection reset by peer") and getattr(
            threading.current_thread(), "server_mode", False
        ):
            return _demote(record)
        return True


_FAKENOS_FILTER = _FakeNosDisconnectFilter()
_SERVER_RESET_FILTER = _ServerResetFilter()


def quiet_fakenos_logging() -> None:
    """Keep the ``fakenos`` logger at WARNING (it logs each device start at INFO) unless the
    application set its level, and install the disconnect filters. Idempotent."""
    fakenos_log = logging.getLogger("fakenos")
    if fakenos_log.level == logging.NOTSET:
        fakenos_log.setLevel(logging.WARNING)
    for name, log_filter in (
        (_FAKENOS_SERVER_LOGGER, _FAKENOS_FILTER),
        ("paramiko.transport", _SERVER_RESET_FILTER),
    ):
        target = logging.getLogger(name)
        if log_filter not in target.filters:
            target.addFilter(log_filter)
