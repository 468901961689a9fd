"""Files moving between clients and devices, staged in Redis (so any machine can serve them)."""
