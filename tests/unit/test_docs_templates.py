"""The Slack and Teams payload templates of docs/webhooks.md render, for every event an
endpoint gets by default, into the JSON those services take."""

from __future__ import annotations

import json

import pytest

from netpulse.models.events import DEFAULT_SUBSCRIPTION, EVENT_TYPES
from netpulse.webhooks.payload import render_body, sample
from tests.support.docs import doc_template

DEFAULT_TYPES = [t for t in EVENT_TYPES if t in DEFAULT_SUBSCRIPTION]


@pytest.mark.parametrize("event_type", DEFAULT_TYPES)
def test_the_slack_template_makes_a_slack_message(event_type: str) -> None:
    event = sample(event_type)
    message = json.loads(render_body(doc_template("Slack"), event))
    assert message["text"].startswith(f"NetPulse {event_type}: {event['status']} on ")
    assert event["device"]["host"] in message["text"]
    [block] = message["blocks"]
    assert block["type"] == "section" and block["text"]["type"] == "mrkdwn"
    assert f"*{event_type}*" in block["text"]["text"]


@pytest.mark.parametrize("event_type", DEFAULT_TYPES)
def test_the_teams_template_makes_an_adaptive_card(event_type: str) -> None:
    event = sample(event_type, include_output=False)
    message = json.loads(render_body(doc_template("Microsoft Teams"), event))
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    title, facts = card["body"]
    assert title["text"] == f"NetPulse: {event_type}"
    good = event["status"] in ("finished", "completed")
    assert title["color"] == ("Good" if good else "Attention")
    values = {f["title"]: f["value"] for f in facts["facts"]}
    assert values["Job"] == event["id"] and values["Status"] == event["status"]
