"""Where the dashboard lives and what its cookie is called (read by the request guard).

The request guard (``api/guard.py``) asks every other path for the API key header; paths
under :data:`PREFIX` authenticate by the session cookie instead (``access.py``).
"""

from __future__ import annotations

PREFIX = "/ui"
LOGIN = f"{PREFIX}/login"
HOME = f"{PREFIX}/jobs"
#: The session's cookie: HttpOnly, SameSite=Strict, Path=/ui (``session.py``).
COOKIE = "netpulse_ui_session"


def is_ui_path(path: str) -> bool:
    """Whether ``path`` is the dashboard's (``/ui`` or below it, not ``/uix``)."""
    return path == PREFIX or path.startswith(PREFIX + "/")
