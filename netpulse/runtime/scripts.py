"""Lua scripts that pipelines run without an extra round trip.

redis-py asks Redis ``SCRIPT EXISTS`` for every script of a pipeline each time the
pipeline runs: one more round trip on every event recorded, every claim and every batch of
attempt outcomes (measured: half of the time from an event to its attempt at light load).
A :class:`PipelinedScript` queues ``EVALSHA`` directly instead, so its scripts must be
loaded first (:func:`load` / :func:`aload`, done once per connection, and again when Redis
answers ``NOSCRIPT`` after it restarted). Called on a connection (not a pipeline), it is
redis-py's script as before, which loads itself when needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from redis.exceptions import NoScriptError

__all__ = ["NoScriptError", "PipelinedScript", "aload", "load"]


class PipelinedScript:
    def __init__(self, conn: Any, source: str) -> None:
        self.source = source
        self._script = conn.register_script(source)

    @property
    def sha(self) -> str:
        return str(self._script.sha)

    def __call__(
        self, keys: Sequence[Any] = (), args: Sequence[Any] = (), client: Any = None
    ) -> Any:
        if isinstance(client, Pipeline | AsyncPipeline):
            return client.evalsha(self.sha, len(keys), *keys, *args)
        return self._script(keys=keys, args=args, client=client)


def load(conn: Any, scripts: Iterable[PipelinedScript]) -> None:
    """Load ``scripts`` into Redis (a synchronous connection), in one round trip."""
    pipe = conn.pipeline(transaction=False)
    for script in scripts:
        pipe.script_load(script.source)
    pipe.execute()


async def aload(conn: Any, scripts: Iterable[PipelinedScript]) -> None:
    """:func:`load` for an asyncio connection."""
    pipe = conn.pipeline(transaction=False)
    for script in scripts:
        pipe.script_load(script.source)
    await pipe.execute()
