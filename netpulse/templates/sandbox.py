"""Template work from clients runs in processes that can be stopped.

A hostile TextFSM or TTP template (a regular expression with nested quantifiers) or a Jinja2
template that builds a huge value freezes a Python process: ``re`` cannot be interrupted and
holds the GIL, so a thread of the controller would stop every other request with it. Here
each render or parse runs in one of ``templates.sandbox_workers`` child processes, each with an
address-space limit (``templates.memory_limit_mb`` above what it needs at rest,
``RLIMIT_AS``). A call that takes longer than ``templates.timeout_seconds`` is answered with a
:class:`TemplateError` and its process is killed and replaced; so is a process that died. The
client gets its 422, and nobody else notices.

The children come from a ``forkserver`` (the controller has threads, which ``fork`` would copy
in whatever state they are), preloaded with the template service, so a replacement starts in
milliseconds. They run :mod:`netpulse.templates.service` functions by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import resource
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from netpulse.templates.contract import TemplateError

if TYPE_CHECKING:
    from netpulse.config import Settings

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["netpulse.templates.service"])

#: What a child may be asked to run (functions of netpulse.templates.service).
ALLOWED = frozenset({"render", "render_lines", "parse", "parse_each"})


def _address_space() -> int:
    """This process's virtual memory now, in bytes (Linux /proc)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _serve(conn: Connection, memory_bytes: int) -> None:
    """A child's loop: run what it is sent, answer ("ok", value) or ("error", message)."""
    from netpulse.templates import service

    limit = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            name, args = conn.recv()
        except EOFError:
            return
        except MemoryError:
            return  # a request larger than the limit; the parent sees the pipe close
        try:
            answer: tuple[str, Any] = ("ok", getattr(service, name)(*args))
        except TemplateError as exc:
            answer = ("error", str(exc))
        except MemoryError:
            answer = ("error", "the template needed more memory than its limit allows")
        except Exception as exc:  # a plugin's bug: the client's call fails, the child goes on
            answer = ("error", f"the template could not be processed: {type(exc).__name__}: {exc}")
        try:
            conn.send(answer)
        except MemoryError:
            conn.send(("error", "the template's result is larger than its memory limit allows"))
        except Exception as exc:
            conn.send(("error", f"the template's result cannot be returned: {exc}"))


class _Child:
    def __init__(self, memory_bytes: int) -> None:
        self.conn, theirs = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=_serve, args=(theirs, memory_bytes), name="template-sandbox", daemon=True
        )
        self.process.start()
        theirs.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class TemplateSandbox:
    """A few child processes that run template work, one call each at a time.

    :meth:`run` blocks (worker nodes call it from their job threads); :meth:`call` is its
    asyncio twin for the controller, on threads of the sandbox's own, one per child.
    """

    def __init__(self, workers: int, timeout: float, memory_mb: int) -> None:
        self.workers = workers
        self.timeout = timeout
        self.memory_bytes = memory_mb * 1024 * 1024
        self._idle: queue.Queue[_Child] | None = None
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")

    def _children(self) -> queue.Queue[_Child]:
        with self._lock:
            if self._idle is None:
                idle: queue.Queue[_Child] = queue.Queue()
                for _ in range(self.workers):
                    idle.put(_Child(self.memory_bytes))
                self._idle = idle
            return self._idle

    def run(self, name: str, *args: Any) -> Any:
        """``netpulse.templates.service.<name>(*args)`` in a child; TemplateError for the
        template's own errors, a timeout, or a child that died under it."""
        if name not in ALLOWED:
            raise ValueError(f"{name} is not template work")
        idle = self._children()
        child = idle.get()
        # Until its answer is read, the child is not fit for another call (a timeout or a
        # crash leaves an answer due on its pipe, or no child at all).
        answered = False
        try:
            try:
                child.conn.send((name, args))
            except OSError:  # the child died taking it in (a request beyond its memory)
                raise TemplateError(
                    "the template's input is larger than templates.memory_limit_mb allows"
                ) from None
            if not child.conn.poll(self.timeout):
                raise TemplateError(
                    f"the template took longer than {self.timeout:g} s "
                    "(templates.timeout_seconds) and was stopped"
                )
            try:
                status, value = child.conn.recv()
            except (EOFError, OSError):
                raise TemplateError(
                    "the template stopped the process working on it (it needed more memory "
                    "than templates.memory_limit_mb allows, or crashed it)"
                ) from None
            answered = True
        finally:
            if answered and child.process.is_alive():
                idle.put(child)
            else:
                log.warning("template sandbox: replacing child %s", child.process.pid)
                child.kill()
                idle.put(_Child(self.memory_bytes))
        if status == "error":
            raise TemplateError(value)
        return value

    async def call(self, name: str, *args: Any) -> Any:
        """:meth:`run` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, lambda: self.run(name, *args))

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            idle, self._idle = self._idle, None
        while idle is not None and not idle.empty():
            idle.get_nowait().kill()


@contextlib.contextmanager
def memory_cap(extra_bytes: int) -> Iterator[None]:
    """Limit this process's address space to what it uses now plus ``extra_bytes`` for the
    ``with`` block (a FIFO work-horse parsing its job's output: one job, one process, so the
    limit touches nothing else), then lift it again."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + extra_bytes
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


_SHARED: TemplateSandbox | None = None
_SHARED_LOCK = threading.Lock()


def shared(settings: Settings) -> TemplateSandbox:
    """This process's sandbox (the controller's, a worker node's), made on first use from
    ``settings.templates``; one per process, so its children are counted once."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            cfg = settings.templates
            _SHARED = TemplateSandbox(cfg.sandbox_workers, cfg.timeout_seconds, cfg.memory_limit_mb)
        return _SHARED
