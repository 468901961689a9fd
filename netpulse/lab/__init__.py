"""Simulated network devices on loopback (FakeNOS) for ``netpulse lab`` and the tests."""

from netpulse.lab.fleet import LabDevice, LabDeviceSpec, LabFleet, default_specs
from netpulse.lab.platforms import INVALID_INPUT, supported_platforms

__all__ = [
    "INVALID_INPUT",
    "LabDevice",
    "LabDeviceSpec",
    "LabFleet",
    "default_specs",
    "supported_platforms",
]
