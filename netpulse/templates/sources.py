"""Where template text comes from: inline, the template directory, or (opt-in) a URL.

A template reference is one string:

- ``file:<name>``: the file ``<name>`` under ``templates.directory``. Only relative names;
  ``..``, absolute paths and symlinks leading out of the directory are refused, so a client
  can read nothing the operator did not put there. The text is :class:`TrustedText`.
- ``http://...`` / ``https://...``: refused unless ``templates.allow_http``. Then fetched
  once, without redirects or environment proxies, through the guarded client of
  ``netpulse.net.client`` (the webhooks' allow/deny lists): the host is resolved, every
  address judged, and the request sent to a checked address so a second DNS answer cannot
  swap it.
- anything else: the template text itself.

Every source is limited to ``templates.max_bytes``. Problems are TemplateError sentences.
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath

import httpx

from netpulse.config import Settings
from netpulse.net.client import make_sync_client
from netpulse.net.ssrf import (
    DestinationPolicy,
    DestinationRefused,
    DestinationUnresolvable,
    check_url,
)
from netpulse.templates.contract import TemplateError, TemplateNotFound, TrustedText

FILE_PREFIX = "file:"
HTTP_PREFIXES = ("http://", "https://")
FETCH_TIMEOUT = 10.0  # seconds per connect/read
FETCH_DEADLINE = 20.0  # seconds for the whole download (a server dripping bytes)
_DIRECTORY_SETTING = "templates.directory (NETPULSE_TEMPLATES__DIRECTORY)"
_HTTP_SETTING = "templates.allow_http (NETPULSE_TEMPLATES__ALLOW_HTTP)"


def load_template(ref: str | None, settings: Settings) -> str | None:
    """The template text ``ref`` stands for (None stays None)."""
    if ref is None:
        return None
    if ref.startswith(FILE_PREFIX):
        return read_file(ref[len(FILE_PREFIX) :], settings)
    if ref[:8].lower().startswith(HTTP_PREFIXES):
        return fetch(ref.strip(), settings)
    _check_size(len(ref.encode("utf-8", "surrogatepass")), "the inline template", settings)
    return ref


def _check_size(size: int, what: str, settings: Settings) -> None:
    limit = settings.templates.max_bytes
    if size > limit:
        raise TemplateError(
            f"{what} is larger than templates.max_bytes ({limit:,} bytes; "
            "NETPULSE_TEMPLATES__MAX_BYTES)"
        )


def _decode(data: bytes, what: str, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise TemplateError(f"{what} is not {encoding} text") from None


# -- file: ----------------------------------------------------------------------------------


def read_file(name: str, settings: Settings) -> TrustedText:
    """Read ``name`` from the template directory, refusing anything that leaves it."""
    directory = settings.templates.directory
    if directory is None:
        raise TemplateError(f"file: templates are off: set {_DIRECTORY_SETTING} to enable them")
    if not name or "\x00" in name:
        raise TemplateError("file: needs a template name, e.g. file:interfaces.j2")
    relative = PurePosixPath(name)
    if relative.is_absolute() or name.startswith(("\\", "~")):
        raise TemplateError(
            f"file:{name} is an absolute path; file: names are relative to the template directory"
        )
    if ".." in relative.parts:
        raise TemplateError(f"file:{name} contains '..'; it may not leave the template directory")
    try:
        base = Path(directory).resolve(strict=True)
    except OSError:
        raise TemplateError(f"the template directory {directory} does not exist") from None
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise TemplateError(f"file:{name} leads outside the template directory (a symlink)")
    if not target.is_file():
        raise TemplateNotFound(f"there is no template file:{name} in the template directory")
    what = f"the template file:{name}"
    _check_size(target.stat().st_size, what, settings)
    with open(target, "rb") as handle:
        data = handle.read(settings.templates.max_bytes + 1)
    _check_size(len(data), what, settings)
    return TrustedText(_decode(data, what))


# -- http(s):// ------------------------------------------------------------------------------


def _reworded(message: str) -> str:
    """The SSRF guard speaks of webhooks; the rules are the same for template URLs."""
    return (
        message.replace("Webhook URLs", "Template URLs")
        .replace("Webhook URL", "Template URL")
        .replace("; put them in the webhook's auth field instead", "; they are not supported")
    )


def _policy(settings: Settings) -> DestinationPolicy:
    hooks = settings.webhooks
    return DestinationPolicy.from_lists(hooks.allow_cidrs, hooks.deny_cidrs, hooks.deny_private)


def fetch(url: str, settings: Settings) -> str:
    """Download a template through the SSRF guard (plain ``str``: the client chose it).

    The client of ``netpulse.net.client`` judges every address it connects to and pins the
    connection to it, so this function only words what went wrong."""
    if not settings.templates.allow_http:
        raise TemplateError(f"fetching templates over http(s) is off: set {_HTTP_SETTING}=true")
    try:
        check_url(url)
    except ValueError as exc:
        raise TemplateError(_reworded(str(exc))) from None
    try:
        with make_sync_client(_policy(settings), timeout=FETCH_TIMEOUT) as client:
            return _download(client, url, settings)
    except DestinationRefused as exc:
        raise TemplateError(
            f"the template URL was refused by the SSRF guard: {exc.reason}"
        ) from None
    except DestinationUnresolvable as exc:
        raise TemplateError(f"the template URL's host cannot be resolved: {exc}") from None
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise TemplateError(
            f"cannot connect to fetch the template from {url} ({exc or type(exc).__name__})"
        ) from None


def _download(client: httpx.Client, url: str, settings: Settings) -> str:
    deadline = time.monotonic() + FETCH_DEADLINE
    try:
        with client.stream("GET", url) as reply:
            if reply.is_redirect:
                raise TemplateError(
                    f"the template URL answered with a redirect ({reply.status_code}); "
                    "redirects are not followed, give the final URL"
                )
            if reply.status_code != 200:
                raise TemplateError(f"the template URL answered HTTP {reply.status_code}")
            declared = reply.headers.get("content-length", "")
            if declared.isdigit():
                _check_size(int(declared), "the fetched template", settings)
            body = bytearray()
            for chunk in reply.iter_bytes():
                body += chunk
                _check_size(len(body), "the fetched template", settings)
                if time.monotonic() > deadline:
                    raise TemplateError(
                        f"fetching the template took longer than {FETCH_DEADLINE:g} s"
                    )
            encoding = reply.charset_encoding or "utf-8"
    except (httpx.ConnectError, httpx.ConnectTimeout):
        raise
    except httpx.HTTPError as exc:
        raise TemplateError(f"fetching the template failed: {exc or type(exc).__name__}") from None
    return _decode(bytes(body), "the fetched template", encoding)
