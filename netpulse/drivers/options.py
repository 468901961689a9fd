"""Allowlisted driver options: what a client may put in ``connection_args`` and ``driver_args``.

Each driver declares two pydantic models in its own plugin package (``connection_options``
and ``driver_options`` on its class): one typed field per option it passes to its library.
Anything else is refused when the job is submitted, with a sentence naming the option and
the driver; options that would make the worker write files, use its own credentials or
open other channels are refused with the reason (``REFUSED`` of each model).

Options that name a file on the worker host are :data:`FilePath`: the path, resolved
(``..`` and symlinks followed), must lie inside the device files directory
(``drivers.files_dir``, default ``<data_dir>/device-files``). A relative path is relative to
that directory. The check runs at submission (controller) and again where the job runs
(worker), since the two may be different hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

#: The ``connection_args`` fields every driver has (``ConnectionArgs``); not options.
COMMON_FIELDS = frozenset({"host", "device_type", "username", "password", "port", "secret"})


def files_dir() -> Path:
    """The one directory option paths may point into, resolved."""
    from netpulse.config import get_settings

    settings = get_settings()
    directory = settings.drivers.files_dir or settings.data_dir / "device-files"
    return Path(directory).expanduser().resolve()


def confined_path(value: str) -> str:
    """``value`` resolved inside the device files directory; ``ValueError`` says why not."""
    return _confined(value)


def _confined(value: str) -> str:
    if not value or "\x00" in value:
        raise ValueError("must be a file path inside the device files directory")
    base = files_dir()
    path = Path(value).expanduser()
    if ".." in path.parts:
        raise ValueError(
            "must be a path inside the device files directory (drivers.files_dir), without `..`"
        )
    resolved = (path if path.is_absolute() else base / path).resolve()
    if not resolved.is_relative_to(base):
        raise ValueError(
            "must name a file inside the device files directory (drivers.files_dir, "
            "NETPULSE_DRIVERS__FILES_DIR); this path is outside it (symlinks are followed)"
        )
    return str(resolved)


#: A path on the worker host, confined to the device files directory; resolved on validation.
FilePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_confined)]
Seconds = Annotated[float, Field(ge=0, le=86400)]


class Options(BaseModel):
    """An allowlist: one typed field per option; nothing else is accepted."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    #: Options refused on purpose, with the reason given to the client.
    REFUSED: ClassVar[dict[str, str]] = {}


class NoOptions(Options):
    """No options at all (the default of a driver that declares none)."""


def option_error(driver: str, where: str, model: type[Options], exc: ValidationError) -> str:
    """One sentence per refused or invalid option, each naming the option and the driver."""
    parts = []
    for err in exc.errors():
        # Without pydantic's union branch tags (`function-after[...]`, `list[...]`).
        loc = [str(p) for p in err["loc"] if isinstance(p, int) or str(p).isidentifier()]
        name = ".".join([where, *loc])
        option = loc[-1] if loc else ""
        if err["type"] == "extra_forbidden":
            refused = {**model.REFUSED, **_nested_refused(model, loc)}
            if option in refused:
                parts.append(f"{name} is not allowed by the {driver} driver: {refused[option]}")
            else:
                allowed = _allowed(model, loc[:-1])
                parts.append(
                    f"{name} is not an option of the {driver} driver"
                    + (f" (allowed: {', '.join(allowed)})" if allowed else " (it takes none)")
                )
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{name} of the {driver} driver: {msg}")
    return "; ".join(parts)


def _submodel(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    for key in path:
        field = model.model_fields.get(key)
        if field is None:
            return None
        found = None
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found = candidate
        if found is None:
            return None
        model = found
    return model


def _nested_refused(model: type[Options], loc: list[str]) -> dict[str, str]:
    sub = _submodel(model, loc[:-1])
    return dict(getattr(sub, "REFUSED", {})) if sub is not None else {}


def _allowed(model: type[BaseModel], path: list[str]) -> list[str]:
    sub = _submodel(model, path)
    return sorted(sub.model_fields) if sub is not None else []


def check(
    driver: str, where: str, model: type[Options], options: Mapping[str, Any]
) -> dict[str, Any]:
    """The options validated against ``model`` (paths resolved), as given (unset left out).

    Raises ``ValueError`` with :func:`option_error`'s sentence.
    """
    try:
        checked = model.model_validate(dict(options))
    except ValidationError as exc:
        raise ValueError(option_error(driver, where, model, exc)) from None
    return checked.model_dump(exclude_unset=True)


def connection_extras(connection_args: Any) -> dict[str, Any]:
    """The options in ``connection_args`` (a ``ConnectionArgs`` or a plain mapping)."""
    if isinstance(connection_args, BaseModel):
        return dict(connection_args.model_extra or {})
    return {k: v for k, v in dict(connection_args or {}).items() if k not in COMMON_FIELDS}
