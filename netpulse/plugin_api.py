"""Everything a plugin is written against, importable from one place.

Plugin code (in ``netpulse/plugins/<kind>/`` or a third-party package) imports from here
only: the modules behind these names may move as NetPulse grows, this module's names stay.
Nothing in NetPulse's core imports this module; it only re-exports the contracts that live
next to their registries (docs/plugins.md).
"""

from __future__ import annotations

from netpulse.credentials import BaseCredentialProvider, CredentialError, CredentialForbidden
from netpulse.drivers import (
    BaseDriver,
    DeviceAuthenticationError,
    DeviceConnectionError,
    DeviceTimeoutError,
    DriverError,
)
from netpulse.drivers.options import NoOptions, Options
from netpulse.models.credential import CredentialRef
from netpulse.models.job import DriverExecutionResult, JobErrorType
from netpulse.models.request import ConnectionArgs, ExecutionRequest, QueueStrategy
from netpulse.net.client import describe_failure, is_timeout, make_client, remote_ip
from netpulse.net.ssrf import DestinationPolicy, DestinationRefused, DestinationUnresolvable
from netpulse.registry import PluginError
from netpulse.schedulers import BaseScheduler, NodeLoad
from netpulse.templates.contract import (
    BaseTemplatePlugin,
    TemplateError,
    TemplateNotFound,
    TrustedText,
)
from netpulse.webhooks.callers import (
    AttemptOutcome,
    BaseWebHookCaller,
    DeliveryContext,
    GiveUp,
    RetryDelivery,
    Verdict,
)
from netpulse.webhooks.delivery.retry import (
    TRANSPORT_ERRORS,
    classify_exception,
    classify_response,
)
from netpulse.webhooks.signing import build_headers as build_signature_headers
from netpulse.webhooks.store import JobSnapshot

__all__ = [
    "TRANSPORT_ERRORS",
    "AttemptOutcome",
    "BaseCredentialProvider",
    "BaseDriver",
    "BaseScheduler",
    "BaseTemplatePlugin",
    "BaseWebHookCaller",
    "ConnectionArgs",
    "CredentialError",
    "CredentialForbidden",
    "CredentialRef",
    "DeliveryContext",
    "DestinationPolicy",
    "DestinationRefused",
    "DestinationUnresolvable",
    "DeviceAuthenticationError",
    "DeviceConnectionError",
    "DeviceTimeoutError",
    "DriverError",
    "DriverExecutionResult",
    "ExecutionRequest",
    "GiveUp",
    "JobErrorType",
    "JobSnapshot",
    "NoOptions",
    "NodeLoad",
    "Options",
    "PluginError",
    "QueueStrategy",
    "RetryDelivery",
    "TemplateError",
    "TemplateNotFound",
    "TrustedText",
    "Verdict",
    "build_signature_headers",
    "classify_exception",
    "classify_response",
    "describe_failure",
    "is_timeout",
    "make_client",
    "remote_ip",
]
