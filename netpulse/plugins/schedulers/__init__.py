"""Scheduler plugins (`least_load` default, `greedy`): which node holds a new pinned device.

The contract they implement is ``netpulse.schedulers``.
"""
