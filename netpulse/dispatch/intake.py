"""Requests as clients send them, checked against the installed plugins.

The request models check shape only (``netpulse.models.plugins``); what a client sends is
also checked here against the driver and webhook caller registries: an unknown driver or
caller, or an option the driver does not allow, is a validation error naming the field,
before anything is queued.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from netpulse.drivers import registry as drivers
from netpulse.models.plugins import DRIVERS, WEBHOOK_CALLERS
from netpulse.webhooks.callers import registry as webhook_callers

#: The validation context that turns the models' plugin checks on.
CHECK_PLUGINS: dict[str, Any] = {DRIVERS: drivers, WEBHOOK_CALLERS: webhook_callers}

M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], data: Any) -> M:
    """``data`` validated as ``model``, plugin names and options included."""
    return model.model_validate(data, context=CHECK_PLUGINS)


def rechecked(parsed: M) -> M:
    """A model FastAPI parsed (shape only), validated again with the plugin checks.

    Dumped in Python mode, so secrets stay ``SecretStr`` objects, never masked text.
    """
    data = parsed.model_dump(mode="python", exclude_unset=True, by_alias=True)
    return type(parsed).model_validate(data, context=CHECK_PLUGINS)
