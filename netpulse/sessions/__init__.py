"""Warm device sessions: kept open between jobs, reused only by the same identity."""
