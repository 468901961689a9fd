"""A hostile template costs its own request a 422 and nobody else anything (issue 10, part 2).

Against the session's controller: a TextFSM regular expression that backtracks for hours, and
a Jinja2 expression that asks for gigabytes, run in the template sandbox's child processes.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from netpulse.config import Settings
from netpulse.templates.contract import TemplateError
from netpulse.templates.sandbox import TemplateSandbox
from tests.integration.helpers import run, ssh_args

#: Nested quantifiers: on "aaaa...c" the regex engine tries 2**40 ways before it fails.
BACKTRACKING = "Value X ((a+)+b)\n\nStart\n  ^${X} -> Record\n"
PLAIN = "Value X (\\S+)\n\nStart\n  ^${X} -> Record\n"


def test_a_regex_that_runs_for_hours_is_stopped_and_the_api_keeps_answering(
    api: httpx.Client,
) -> None:
    replies: dict[str, httpx.Response] = {}

    def hostile() -> None:
        replies["parse"] = api.post(
            "/template/parse",
            json={"name": "textfsm", "template": BACKTRACKING, "context": "a" * 40 + "c"},
        )

    worker = threading.Thread(target=hostile)
    worker.start()
    # While the parse runs, the API answers (a thread of the controller would have frozen it).
    for _ in range(5):
        assert api.get("/health").status_code == 200
        assert api.get("/jobs", params={"limit": 1}).status_code == 200
    assert worker.is_alive(), "the hostile parse ended too soon to show anything"
    worker.join(60)
    reply = replies["parse"]
    assert reply.status_code == 422, reply.text
    assert "took longer than" in reply.json()["detail"]
    # The sandbox replaced the process it killed: the next parse works.
    fine = api.post(
        "/template/parse", json={"name": "textfsm", "template": PLAIN, "context": "word"}
    )
    assert fine.status_code == 200, fine.text
    assert fine.json() == [{"X": "word"}]


def test_work_that_outgrows_the_memory_limit_fails_alone() -> None:
    """The sandbox itself, with a small limit: a parse whose output and result need far more
    than 32 MiB fails with a sentence, and the next call runs on a fresh process."""
    sandbox = TemplateSandbox(workers=1, timeout=60, memory_mb=32)
    settings = Settings()
    big = "word\n" * (20 * 1024 * 1024)  # 100 MiB of output, each line a record

    async def scenario() -> None:
        try:
            with pytest.raises(TemplateError, match="memory_limit_mb"):
                await sandbox.call("parse", "textfsm", PLAIN, big, {}, settings)
            small = await sandbox.call("parse", "textfsm", PLAIN, "word", {}, settings)
            assert small == [{"X": "word"}]
        finally:
            sandbox.close()

    asyncio.run(scenario())


def test_a_job_whose_parse_never_ends_finishes_and_its_node_goes_on(
    system: httpx.Client, sshd: Any
) -> None:
    """On a worker node every job thread shares one process: the parse runs in the node's
    sandbox, is stopped after its time, and the job keeps its output and says why."""
    hostile = {
        "driver": "paramiko",
        "queue_strategy": "pinned",
        "connection_args": ssh_args(sshd),
        "command": "printf 'a%.0s' $(seq 40); echo c",
        "parsing": {"name": "textfsm", "template": BACKTRACKING},
    }
    job = run(system, hostile, timeout=60)
    assert job["status"] == "finished", job
    [item] = job["result"]["retval"]
    assert item["stdout"].strip() == "a" * 40 + "c"
    assert "took longer than" in item["metadata"]["parse_error"]
    plain = {**hostile, "command": "echo word", "parsing": {"name": "textfsm", "template": PLAIN}}
    after = run(system, plain)
    assert after["result"]["retval"][0]["parsed"] == [{"X": "word"}]
