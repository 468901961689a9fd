"""paramiko: commands on Linux hosts over SSH, with real exit status and stderr."""

from netpulse.plugins.drivers.paramiko.driver import ParamikoDriver

__all__ = ["ParamikoDriver"]
