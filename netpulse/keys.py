"""Names of NetPulse's own Redis keys and channels (RQ's keys are RQ's business)."""

from __future__ import annotations

PREFIX = "netpulse"

#: Pub/sub channel carrying the id of every job that reached a final state.
JOB_DONE_CHANNEL = f"{PREFIX}:jobs:done"


def job_done_channel() -> str:
    return JOB_DONE_CHANNEL


#: The names of the credentials in the built-in store (a set).
CREDENTIAL_INDEX = f"{PREFIX}:credentials"


def credential_key(name: str) -> str:
    """One stored credential (a hash: sealed fields and timestamps)."""
    return f"{PREFIX}:credential:{name}"


#: The scoped API keys by name (a hash: name -> the key's record as JSON, no key in it).
API_KEYS = f"{PREFIX}:api-keys"
#: The same keys by the SHA-256 of the key (a hash: digest -> name), the lookup on each call.
API_KEY_DIGESTS = f"{PREFIX}:api-key-digests"


def idempotency_key(principal: str, key_digest: str) -> str:
    """The first reply to a submission with an ``Idempotency-Key``, per API key (a string,
    24 h; ``dispatch/idempotency.py``)."""
    return f"{PREFIX}:idem:{principal}:{key_digest}"


#: One dashboard login (``/ui``): a hash keyed by the SHA-256 of the session's cookie value,
#: holding the key's name and scopes, the CSRF token and the expiry, never the API key
#: (``api/ui/store.py``); it expires with the session.
UI_SESSION_PREFIX = f"{PREFIX}:ui:session"


def ui_session_key(session_digest: str) -> str:
    return f"{UI_SESSION_PREFIX}:{session_digest}"
