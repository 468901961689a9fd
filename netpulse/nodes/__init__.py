"""Worker nodes: processes that hold warm device sessions, their registry and failover."""
