"""Breaking a netmiko session from another thread, for drivers built on netmiko.

A stop request (``DELETE /jobs/{id}``) must end the job's blocked read at once, not when its
``read_timeout`` passes. Closing the SSH transport alone is not enough: netmiko's read loop
polls ``recv_ready()``, which stays False on a closed channel, so it would poll on until the
timeout. Taking the channel away from netmiko's reader as well makes its next poll raise
``ReadException`` ("no active channel"), within one poll interval (about 10 ms).
netmiko's own ``disconnect`` is no use here: it writes to the channel and waits for the
device.
"""

from __future__ import annotations

from typing import Any


def break_netmiko_session(conn: Any) -> bool:
    """Close ``conn``'s SSH transport and detach its reader; False if it had no transport."""
    channel = getattr(conn, "remote_conn", None)
    transport = getattr(channel, "transport", None)
    if transport is not None:
        transport.close()
    reader = getattr(conn, "channel", None)
    if reader is not None and hasattr(reader, "remote_conn"):
        reader.remote_conn = None
    return transport is not None
