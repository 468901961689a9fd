"""netmiko: CLI over SSH to network devices of most vendors."""

from netpulse.plugins.drivers.netmiko.driver import NetmikoDriver

__all__ = ["NetmikoDriver"]
