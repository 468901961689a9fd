"""Device driver plugins: one folder per library (`netmiko/`, `paramiko/`, ...).

The contract they implement is ``netpulse.drivers``.
"""
