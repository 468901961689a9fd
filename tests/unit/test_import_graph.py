"""The import graph: no circles (between modules or between packages), and every module
imports on its own. Function-level imports count (they are how circles hide); imports under
``TYPE_CHECKING`` do not (they never run). The layering itself is import-linter's contracts
in pyproject.toml, run by scripts/test.sh."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import traceback
from collections.abc import Iterable

import grimp
import pytest

import netpulse

#: Third-party libraries imported once before the per-module check forks, so that each fork
#: imports only NetPulse code (and stays fast). None of them imports NetPulse.
HEAVY_LIBRARIES = [
    "fastapi",
    "pydantic",
    "rq",
    "redis",
    "httpx",
    "aiohttp",
    "jinja2",
    "yaml",
    "paramiko",
    "netmiko",
    "napalm",
    "pyeapi",
    "textfsm",
    "ttp",
    "typer",
    "rich",
    "prometheus_client",
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        "netpulse", include_external_packages=False, exclude_type_checking_imports=True
    )


def circles(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def package_of(module: str) -> str:
    """``netpulse.<package>``, or ``netpulse.plugins.<kind>`` for plugins."""
    parts = module.split(".")
    depth = 3 if len(parts) > 2 and parts[1] == "plugins" else 2
    return ".".join(parts[:depth])


def test_circles_are_found() -> None:
    """The checker itself: a circle of three is reported, a chain is not."""
    assert circles("abc", {"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert circles("abc", {"a": {"b"}, "b": {"c"}}) == []


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert circles(graph.modules, edges) == []


def test_no_two_packages_import_each_other(graph: grimp.ImportGraph) -> None:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if package_of(module) != package_of(imported):
                edges.setdefault(package_of(module), set()).add(package_of(imported))
    packages = {package_of(m) for m in graph.modules}
    assert circles(packages, edges) == []


def all_modules() -> list[str]:
    names = ["netpulse"]
    for info in pkgutil.walk_packages(netpulse.__path__, "netpulse."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return sorted(names)


def import_alone(name: str) -> str | None:
    """Import ``name`` in a fresh fork holding no NetPulse module; the error, or None."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        status = 0
        try:
            for loaded in [m for m in sys.modules if m == "netpulse" or m.startswith("netpulse.")]:
                del sys.modules[loaded]
            importlib.import_module(name)
        except BaseException:
            os.write(write, traceback.format_exc(limit=-3).encode()[-4000:])
            status = 1
        os.close(write)
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return message or None if os.waitstatus_to_exitcode(status) == 0 else message or "died"


def test_every_module_imports_alone() -> None:
    for library in HEAVY_LIBRARIES:
        importlib.import_module(library)
    modules = all_modules()
    assert len(modules) > 100  # the walk found the package, not an empty path
    failures = {name: error for name in modules if (error := import_alone(name)) is not None}
    assert failures == {}
