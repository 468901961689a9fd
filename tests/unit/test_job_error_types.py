"""``result.error.type``: the list in the code (``JobErrorType``) and in docs/api.md agree."""

from __future__ import annotations

import re
from pathlib import Path

from netpulse.models.job import JobErrorType

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_types(text: str) -> set[str]:
    """The backticked names of the "Types (the whole list):" sentence, up to its full stop
    (parenthesised explanations may mention other words in backticks; those are skipped)."""
    start = text.index("Types (the whole list):")
    sentence = text[start : text.index("`.", start) + 2]
    without_notes = re.sub(r"\([^)]*\)", "", sentence)
    return set(re.findall(r"`([a-z_]+)`", without_notes))


def test_every_error_type_is_documented_and_no_other() -> None:
    assert documented_types(API_DOC.read_text()) == {t.value for t in JobErrorType}


def test_a_type_missing_from_the_docs_is_noticed() -> None:
    text = API_DOC.read_text().replace("`file_missing` (", "(")
    assert documented_types(text) == {t.value for t in JobErrorType} - {"file_missing"}
