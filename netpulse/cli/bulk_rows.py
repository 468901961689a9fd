"""Read the device file of `netpulse exec`: a CSV or XLSX table, one device per row.

The columns are those of the original NetPulse's ``netpulse-cli`` device files, so its users'
files work unchanged: ``Selected``, ``Vendor``, ``IP``, ``Port``, ``Username``/``User``,
``Password``/``Pass``, ``Keepalive``, and the descriptive ``Name``, ``Site``, ``Location``,
``Rack``, ``Model`` (read and ignored). Header names are case-insensitive; ``Secret`` (the
enable secret) is ours.

What must stay true:

* A problem in the file is a :class:`DeviceFileError` naming the file, the row and the
  column, raised before anything is sent: a fleet is never half-submitted because row 812
  has a typo. An unknown column is an error too (a misspelt ``Pasword`` would otherwise
  send every row without its password).
* A cell of ``Pass`` or ``Secret`` is never part of a message, and :class:`DeviceRow` keeps
  both out of its ``repr``.
* Rows that will not be submitted (not selected) are not checked: an old, half-filled row
  someone switched off does not block the run.

Pure logic: no network, no console; tested in tests/unit/test_cli_bulk_rows.py.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The fields a row gives, and the header names (normalised) each is read from.
COLUMNS: dict[str, tuple[str, ...]] = {
    "selected": ("selected",),
    "device_type": ("vendor", "device_type"),
    "host": ("ip", "host"),
    "port": ("port",),
    "username": ("user", "username"),
    "password": ("pass", "password"),
    "secret": ("secret",),
    "keepalive": ("keepalive",),
}
#: How the columns are named in messages (the original's spelling, then the aliases).
SHOWN = {
    "selected": "Selected",
    "device_type": "Vendor",
    "host": "IP",
    "port": "Port",
    "username": "User",
    "password": "Pass",
    "secret": "Secret",
    "keepalive": "Keepalive",
}
#: Descriptive columns of the original's device files: accepted, not used.
IGNORED = ("name", "site", "location", "rack", "model")
#: Cells never quoted in a message.
SECRET_FIELDS = ("password", "secret")

#: The original's vendor names and the netmiko device type each stands for; any other
#: value is taken as a device type itself (``cisco_xr``, ``linux``...).
VENDORS = {
    "arista": "arista_eos",
    "cisco": "cisco_ios",
    "fortinet": "fortinet",
    "h3c": "hp_comware",
    "huawei": "huawei",
}

TRUE = frozenset({"true", "t", "yes", "y", "1", "x"})
FALSE = frozenset({"false", "f", "no", "n", "0", ""})
DEFAULT_PORT = 22
HEADER_ROW = 1


class DeviceFileError(ValueError):
    """The device file cannot be used as it is; the message says where and why."""

    def __init__(self, path: Path, row: int | None, column: str | None, problem: str) -> None:
        where = [path.name]
        if row is not None:
            where.append(f"row {row}" + (" (the header)" if row == HEADER_ROW else ""))
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.path, self.row, self.column = path, row, column


@dataclass(frozen=True)
class DeviceRow:
    """One device to submit. ``number`` is its row in the file (the header is row 1)."""

    number: int
    host: str
    port: int
    device_type: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    keepalive: float | None = None

    @property
    def device(self) -> str:
        """``host:port``, as the result file names the device."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Needs:
    """Which cells a submitted row must have, given the command line: a login is not needed
    from the file when a stored credential or ``--password-stdin`` gives it."""

    device_type: bool = True
    username: bool = True
    password: bool = True
    default_device_type: str | None = None


@dataclass(frozen=True)
class DeviceFile:
    """What was read: the rows to submit, and how many were left out as not selected."""

    rows: list[DeviceRow]
    skipped: int


def read_device_file(path: Path, needs: Needs = Needs(), force: bool = False) -> DeviceFile:
    """The rows of a ``.csv`` or ``.xlsx`` file to submit (all of them with ``force``).

    Raises :class:`DeviceFileError`.
    """
    header, records = _table(path)
    columns = _columns(path, header, needs)
    rows: list[DeviceRow] = []
    skipped = 0
    for number, cells in records:
        if not any(cells):
            continue  # a blank line, or a spreadsheet row someone emptied
        values = _values(path, number, header, columns, cells)
        if not force and not _selected(path, number, values):
            skipped += 1
            continue
        rows.append(_row(path, number, values, needs))
    return DeviceFile(rows, skipped)


def _table(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and the numbered rows, every cell as stripped text."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _csv_records(path)
    elif suffix in (".xlsx", ".xlsm"):
        records = _xlsx_records(path)
    else:
        raise DeviceFileError(
            path, None, None, "not a device file: give a .csv or .xlsx file (old .xls: save as)"
        )
    try:
        first = next(records)
    except StopIteration:
        raise DeviceFileError(path, None, None, "the file is empty: no header row") from None
    return first[1], records


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        # utf-8-sig: Excel writes a byte order mark in front of "UTF-8 CSV" files.
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DeviceFileError(path, None, None, f"cannot be read: {exc.strerror}") from None
    with handle:
        try:
            for number, record in enumerate(csv.reader(handle), start=HEADER_ROW):
                yield number, [cell.strip() for cell in record]
        except UnicodeDecodeError:
            raise DeviceFileError(
                path, None, None, "is not UTF-8 text: save it as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            raise DeviceFileError(path, None, None, f"is not valid CSV: {exc}") from None


def _xlsx_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    import zipfile

    import openpyxl  # type: ignore[import-untyped]

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise DeviceFileError(path, None, None, f"cannot be read: {exc.strerror}") from None
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DeviceFileError(path, None, None, f"is not a valid .xlsx workbook ({exc})") from None
    try:
        # The first sheet, as the original read it (pandas.read_excel's default).
        sheet = book.worksheets[0]
        start = sheet.min_row or HEADER_ROW
        for number, record in enumerate(sheet.iter_rows(values_only=True), start=start):
            yield number, [_text(cell) for cell in record]
    finally:
        book.close()


def _text(cell: Any) -> str:
    """A spreadsheet cell as the text a CSV would hold (22.0 -> "22", TRUE -> "true")."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _columns(path: Path, header: list[str], needs: Needs) -> dict[str, int]:
    """Field name -> index of its column; unknown, doubled and missing columns are errors."""
    known = {alias: name for name, aliases in COLUMNS.items() for alias in aliases}
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = _normal(raw)
        if not name or name in IGNORED:
            continue  # an unnamed column must then be empty: checked per row
        if name not in known:
            raise DeviceFileError(
                path,
                HEADER_ROW,
                repr(raw),
                "unknown column; the columns are "
                + ", ".join(_shown_with_aliases(f) for f in COLUMNS)
                + " and the descriptive Name, Site, Location, Rack, Model",
            )
        fieldname = known[name]
        if fieldname in columns:
            raise DeviceFileError(
                path,
                HEADER_ROW,
                repr(raw),
                f"a second {SHOWN[fieldname]} column (column {columns[fieldname] + 1} is one)",
            )
        columns[fieldname] = index
    required = ["host"]
    if needs.device_type and needs.default_device_type is None:
        required.append("device_type")
    if needs.username:
        required.append("username")
    if needs.password:
        required.append("password")
    for fieldname in required:
        if fieldname not in columns:
            raise DeviceFileError(
                path,
                HEADER_ROW,
                SHOWN[fieldname],
                f"missing: the file has no {_shown_with_aliases(fieldname)} column "
                f"({_why_needed(fieldname)})",
            )
    return columns


def _shown_with_aliases(fieldname: str) -> str:
    others = [a for a in COLUMNS[fieldname] if a != SHOWN[fieldname].lower()]
    return SHOWN[fieldname] + (f" (or {', '.join(others)})" if others else "")


def _why_needed(fieldname: str) -> str:
    return {
        "host": "the address of each device",
        "device_type": "the device type of each device, or give --vendor for all",
        "username": "the login of each device, or give --credential",
        "password": "the password of each device, or give --password-stdin or --credential",
    }[fieldname]


def _values(
    path: Path, number: int, header: list[str], columns: dict[str, int], cells: list[str]
) -> dict[str, str]:
    """The row's cell for each known field (empty when the row is short)."""
    for index, cell in enumerate(cells):
        if cell and (index >= len(header) or not header[index].strip()):
            raise DeviceFileError(
                path, number, f"{index + 1}", "a value in a column that has no header name"
            )
    return {name: cells[index] if index < len(cells) else "" for name, index in columns.items()}


def _selected(path: Path, number: int, values: dict[str, str]) -> bool:
    if "selected" not in values:
        return True  # no Selected column: every row
    text = values["selected"].lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise DeviceFileError(
        path,
        number,
        "Selected",
        f"{values['selected']!r} is neither yes (true, yes, y, 1, x) nor no "
        "(false, no, n, 0, empty)",
    )


def _row(path: Path, number: int, values: dict[str, str], needs: Needs) -> DeviceRow:
    def problem(fieldname: str, what: str) -> DeviceFileError:
        return DeviceFileError(path, number, SHOWN[fieldname], what)

    host = values.get("host", "")
    if not host:
        raise problem("host", "empty: every selected row needs the device's address")
    port = DEFAULT_PORT
    if values.get("port"):
        try:
            port = int(values["port"])
        except ValueError:
            raise problem("port", f"{values['port']!r} is not a port number") from None
        if not 1 <= port <= 65535:
            raise problem("port", f"{port} is not a port number (1 to 65535)")
    device_type = _device_type(values.get("device_type", "")) or needs.default_device_type
    if needs.device_type and not device_type:
        raise problem("device_type", "empty: give the vendor or device type, or --vendor")
    keepalive: float | None = None
    if values.get("keepalive"):
        try:
            keepalive = float(values["keepalive"])
        except ValueError:
            raise problem("keepalive", f"{values['keepalive']!r} is not seconds") from None
        if not 0 <= keepalive <= 86400:
            raise problem("keepalive", f"{values['keepalive']} is not 0 to 86400 seconds")
    username = values.get("username") or None
    if needs.username and username is None:
        raise problem("username", "empty: give the login, or --credential")
    password = values.get("password") or None
    if needs.password and password is None:
        raise problem("password", "empty: give the password, or --password-stdin or --credential")
    return DeviceRow(
        number=number,
        host=host,
        port=port,
        device_type=device_type,
        username=username,
        password=password,
        secret=values.get("secret") or None,
        keepalive=keepalive,
    )


def _device_type(vendor: str) -> str | None:
    """The netmiko device type a Vendor cell stands for (None when empty)."""
    if not vendor:
        return None
    return VENDORS.get(vendor.lower(), vendor.lower())
