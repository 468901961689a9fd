"""Reading examples out of the documentation, so tests check what users copy."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def doc_template(heading: str) -> str:
    """The ```jinja block under ``#### <heading>`` in docs/webhooks.md."""
    section = (DOCS / "webhooks.md").read_text().split(f"#### {heading}\n", 1)[1]
    found = re.search(r"```jinja\n(.*?)```", section, re.S)
    assert found, f"no jinja block under {heading}"
    return found.group(1)
