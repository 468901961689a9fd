"""Who may reuse a session: same driver, host, port, username, device type and credentials.

The credentials enter only a salted digest, so the pool never keeps them as a key and two
requests with different passwords never share a login.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from netpulse.models.request import ExecutionRequest

#: Per-process salt: digests are compared in memory only, never stored.
_SALT = os.urandom(16)


def session_identity(req: ExecutionRequest) -> str:
    args = req.connection_args.model_dump(exclude_none=True)
    material = json.dumps({"driver": req.driver, **args}, sort_keys=True, default=str)
    return hmac.new(_SALT, material.encode(), hashlib.sha256).hexdigest()
