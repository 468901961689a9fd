"""`netpulse exec`'s pure parts: reading device files (CSV and XLSX), cutting the rows into
bulk requests, masking secrets, and the order in which jobs are watched."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from netpulse.cli.bulk_board import RECHECK_FIRST, Board
from netpulse.cli.bulk_report import Redactor, error_of, header, line
from netpulse.cli.bulk_request import JobSpec, OptionsError, chunks
from netpulse.cli.bulk_rows import DeviceFileError, DeviceRow, Needs, read_device_file


def csv_file(tmp_path: Path, text: str, name: str = "devices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def xlsx_file(tmp_path: Path, rows: list[list[object]], name: str = "devices.xlsx") -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    book.save(path)
    return path


ORIGINAL = (
    "Selected,Name,Site,Location,Rack,Vendor,Model,IP,Port,Username,Password,Keepalive\n"
    "True,r1,AB,XX,L01,Cisco,Sim,10.0.0.1,10005,admin,pw-one,180\n"
    "False,r2,AB,XX,L01,Huawei,Sim,10.0.0.2,,admin,pw-two,\n"
    "true,r3,AB,XX,L01,arista_eos,Sim,10.0.0.3,,ops,pw-three,\n"
)


def test_the_original_netpulse_cli_file_reads_as_it_is(tmp_path: Path) -> None:
    read = read_device_file(csv_file(tmp_path, ORIGINAL))
    assert read.skipped == 1
    first, third = read.rows
    assert (first.number, first.host, first.port, first.device_type) == (
        2,
        "10.0.0.1",
        10005,
        "cisco_ios",
    )
    assert (first.username, first.password, first.keepalive) == ("admin", "pw-one", 180.0)
    assert (third.number, third.port, third.device_type, third.keepalive) == (
        4,
        22,
        "arista_eos",
        None,
    )
    assert third.device == "10.0.0.3:22"


def test_headers_are_case_insensitive_and_take_the_short_names(tmp_path: Path) -> None:
    text = "selected,DEVICE_TYPE,host,port,user,PASS,Secret\nyes,linux,10.0.0.9,2222,u,p,s\n"
    (row,) = read_device_file(csv_file(tmp_path, text)).rows
    assert (row.device_type, row.host, row.port, row.username, row.password, row.secret) == (
        "linux",
        "10.0.0.9",
        2222,
        "u",
        "p",
        "s",
    )


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "no", "N", "", " f "])
def test_rows_not_selected_are_skipped(tmp_path: Path, value: str) -> None:
    text = f"Selected,Vendor,IP,User,Pass\n{value},cisco,10.0.0.1,u,p\n"
    read = read_device_file(csv_file(tmp_path, text))
    assert (read.rows, read.skipped) == ([], 1)


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "Y", "x"])
def test_rows_selected(tmp_path: Path, value: str) -> None:
    text = f"Selected,Vendor,IP,User,Pass\n{value},cisco,10.0.0.1,u,p\n"
    assert len(read_device_file(csv_file(tmp_path, text)).rows) == 1


def test_without_a_selected_column_every_row_is_taken_and_force_takes_unselected(
    tmp_path: Path,
) -> None:
    plain = "Vendor,IP,User,Pass\ncisco,10.0.0.1,u,p\ncisco,10.0.0.2,u,p\n"
    assert len(read_device_file(csv_file(tmp_path, plain)).rows) == 2
    forced = read_device_file(csv_file(tmp_path, ORIGINAL), force=True)
    assert [r.host for r in forced.rows] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert forced.skipped == 0


def test_a_missing_ip_column_names_the_file_the_header_row_and_the_column(
    tmp_path: Path,
) -> None:
    text = "Selected,Vendor,Port,User,Pass\ntrue,cisco,22,u,p\n"
    with pytest.raises(DeviceFileError) as caught:
        read_device_file(csv_file(tmp_path, text, "fleet.csv"))
    message = str(caught.value)
    assert message.startswith("fleet.csv, row 1 (the header), column IP: missing")
    assert (caught.value.row, caught.value.column) == (1, "IP")


def test_an_unknown_column_is_an_error_naming_it(tmp_path: Path) -> None:
    text = "Selected,Vendor,IP,User,Pasword\ntrue,cisco,10.0.0.1,u,p\n"
    with pytest.raises(
        DeviceFileError, match=r"devices.csv, row 1 \(the header\), column 'Pasword'"
    ):
        read_device_file(csv_file(tmp_path, text))


def test_a_column_given_twice_is_an_error(tmp_path: Path) -> None:
    text = "Vendor,device_type,IP,User,Pass\ncisco,cisco_ios,10.0.0.1,u,p\n"
    with pytest.raises(DeviceFileError, match="second Vendor column"):
        read_device_file(csv_file(tmp_path, text))


@pytest.mark.parametrize(
    ("cells", "column", "says"),
    [
        ("maybe,cisco,10.0.0.1,22,u,p", "Selected", "neither yes"),
        ("true,cisco,,22,u,p", "IP", "empty"),
        ("true,cisco,10.0.0.1,ssh,u,p", "Port", "'ssh' is not a port number"),
        ("true,cisco,10.0.0.1,70000,u,p", "Port", "1 to 65535"),
        ("true,,10.0.0.1,22,u,p", "Vendor", "empty"),
        ("true,cisco,10.0.0.1,22,,p", "User", "empty"),
        ("true,cisco,10.0.0.1,22,u,", "Pass", "empty"),
    ],
)
def test_a_bad_cell_names_the_row_and_the_column(
    tmp_path: Path, cells: str, column: str, says: str
) -> None:
    text = f"Selected,Vendor,IP,Port,User,Pass\ntrue,cisco,10.0.0.9,22,u,p\n{cells}\n"
    with pytest.raises(DeviceFileError) as caught:
        read_device_file(csv_file(tmp_path, text))
    assert str(caught.value).startswith(f"devices.csv, row 3, column {column}: ")
    assert says in str(caught.value)


def test_rows_not_selected_are_not_checked(tmp_path: Path) -> None:
    text = "Selected,Vendor,IP,Port,User,Pass\nfalse,,,ssh,,\ntrue,cisco,10.0.0.1,22,u,p\n"
    read = read_device_file(csv_file(tmp_path, text))
    assert [r.number for r in read.rows] == [3]


def test_a_value_in_a_column_without_a_name_is_an_error(tmp_path: Path) -> None:
    text = "Vendor,IP,User,Pass\ncisco,10.0.0.1,u,p,surprise\n"
    with pytest.raises(DeviceFileError, match="row 2, column 5: a value in a column that has no"):
        read_device_file(csv_file(tmp_path, text))


def test_a_password_cell_never_shows(tmp_path: Path) -> None:
    text = "Vendor,IP,Port,User,Pass,Secret\ncisco,10.0.0.1,22,u,hunter2-pw,en-secret\n"
    (row,) = read_device_file(csv_file(tmp_path, text)).rows
    assert "hunter2-pw" not in repr(row) and "en-secret" not in repr(row)


def test_what_the_command_line_gives_is_not_needed_from_the_file(tmp_path: Path) -> None:
    text = "IP,Port\n10.0.0.1,22\n"
    needs = Needs(username=False, password=False, default_device_type="cisco_ios")
    (row,) = read_device_file(csv_file(tmp_path, text), needs).rows
    assert (row.device_type, row.username, row.password) == ("cisco_ios", None, None)
    with pytest.raises(DeviceFileError, match="column User: missing"):
        read_device_file(csv_file(tmp_path, text), Needs(password=False, device_type=False))


def test_blank_lines_and_a_byte_order_mark_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffIP,Vendor,User,Pass\r\n\r\n10.0.0.1,cisco,u,p\r\n,,,\r\n".encode())
    (row,) = read_device_file(path).rows
    assert (row.number, row.host) == (3, "10.0.0.1")


def test_xlsx_cells_are_read_like_csv_text(tmp_path: Path) -> None:
    path = xlsx_file(
        tmp_path,
        [
            ["Selected", "Vendor", "IP", "Port", "User", "Pass", "Keepalive", "Name"],
            [True, "Cisco", "10.0.0.1", 2022, "admin", "pw", 30, "r1"],
            [False, "Cisco", "10.0.0.2", 22, "admin", "pw", None, "r2"],
            [],
            [1, "huawei", "10.0.0.3", 22.0, "admin", 1234, 2.5, None],
        ],
    )
    read = read_device_file(path)
    assert read.skipped == 1
    assert [(r.number, r.host, r.port, r.device_type) for r in read.rows] == [
        (2, "10.0.0.1", 2022, "cisco_ios"),
        (5, "10.0.0.3", 22, "huawei"),
    ]
    assert read.rows[0].keepalive == 30 and read.rows[1].keepalive == 2.5
    assert read.rows[1].password == "1234"


def test_an_xlsx_with_a_bad_cell_names_its_row(tmp_path: Path) -> None:
    path = xlsx_file(tmp_path, [["IP", "Vendor", "User", "Pass"], [None, "cisco", "u", "p"]])
    with pytest.raises(DeviceFileError, match=r"devices\.xlsx, row 2, column IP: empty"):
        read_device_file(path)


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("devices.txt", "IP\n", "give a .csv or .xlsx file"),
        ("devices.csv", "", "the file is empty"),
        ("devices.xlsx", "not a zip", "not a valid .xlsx workbook"),
    ],
)
def test_files_that_are_no_device_table(tmp_path: Path, name: str, content: str, says: str) -> None:
    with pytest.raises(DeviceFileError, match=says):
        read_device_file(csv_file(tmp_path, content, name))
    with pytest.raises(DeviceFileError, match="cannot be read"):
        read_device_file(tmp_path / "missing.csv")


# -- the rows in bulk requests ---------------------------------------------------------------


def rows(*hosts: str) -> list[DeviceRow]:
    return [DeviceRow(number=i + 2, host=h, port=22 + i) for i, h in enumerate(hosts)]


def test_a_request_never_holds_one_host_twice_and_keeps_each_hosts_order() -> None:
    made = chunks(rows("a", "a", "b", "a", "c", "b"), size=2)
    assert [[(r.host, r.number) for r in c] for c in made] == [
        [("a", 2), ("b", 4)],
        [("a", 3), ("c", 6)],
        [("a", 5), ("b", 7)],
    ]
    for chunk in made:
        assert len({r.host for r in chunk}) == len(chunk)


def test_distinct_hosts_fill_every_request() -> None:
    made = chunks(rows(*[f"10.0.0.{i}" for i in range(250)]), size=100)
    assert [len(c) for c in made] == [100, 100, 50]
    assert [r.number for c in made for r in c] == list(range(2, 252))


def test_the_bulk_body_shares_the_options_and_keeps_the_stdin_password_once() -> None:
    spec = JobSpec(
        driver="netmiko",
        kind="command",
        payload=["show clock"],
        enable=True,
        credential="core",
        webhook_url="http://127.0.0.1:9/hook",
        password="from-stdin",
    )
    row = DeviceRow(2, "10.0.0.1", 22, "cisco_ios", "u", "from-file", None, 30)
    body = spec.body([row])
    assert body["connection_args"] == {"password": "from-stdin"}
    assert body["devices"] == [
        {
            "host": "10.0.0.1",
            "port": 22,
            "device_type": "cisco_ios",
            "username": "u",
            "keepalive": 30,
        }
    ]
    assert body["credential"] == {"name": "local", "ref": "core"}
    assert body["webhook"] == {"url": "http://127.0.0.1:9/hook"} and body["enable_mode"] is True
    spec.check()


def test_a_bad_shared_option_is_found_before_sending() -> None:
    spec = JobSpec(driver="netmiko", kind="command", payload=["x"], webhook_url="not a url")
    with pytest.raises(OptionsError, match="webhook"):
        spec.check()


def test_a_bulk_reply_is_matched_to_its_rows_by_host_and_order() -> None:
    from netpulse.cli.bulk_follow import _record

    board = Board(rows("a", "b", "c", "d"))
    _record(
        board,
        board.outcomes,
        {
            "succeeded": [{"id": "ja", "status": "queued"}, {"id": "jc", "status": "queued"}],
            "failed": [{"host": "b", "reason": "connection_args.port: bad"}],
        },
    )
    a, b, c, d = board.outcomes
    assert (a.job_id, c.job_id) == ("ja", "jc")
    assert (b.status, b.error) == ("refused", "refused: connection_args.port: bad")
    # One job short: the row is reported, never lost.
    assert d.status == "refused" and "no job for this device" in (d.error or "")
    assert board.counts().failed == 2 and board.counts().queued == 2


# -- secrets and the result file -------------------------------------------------------------


def test_the_redactor_masks_every_secret_wherever_it_appears() -> None:
    redact = Redactor(["pw", "pw-long", None, ""])
    assert redact("login pw-long failed, pw too") == "login *** failed, *** too"
    assert Redactor([])("as is") == "as is"


def test_a_result_line_has_each_commands_exit_and_first_line() -> None:
    board = Board(rows("10.0.0.1"))
    (outcome,) = board.outcomes
    board.queued(
        outcome,
        {
            "id": "j1",
            "status": "finished",
            "result": {
                "type": 1,
                "retval": [
                    {"command": "show clock", "stdout": "\n12:00 UTC\nmore", "exit_status": 0},
                    {
                        "command": "show bad",
                        "stdout": "",
                        "stderr": "% Invalid input",
                        "exit_status": 1,
                    },
                ],
            },
        },
    )
    commands = [("show clock", 1), ("show bad", 1)]
    assert header(commands) == [
        "row",
        "device",
        "status",
        "job id",
        "show clock: exit",
        "show clock: output",
        "show bad: exit",
        "show bad: output",
        "error",
    ]
    assert line(outcome, commands, Redactor([])) == [
        "2",
        "10.0.0.1:22",
        "finished",
        "j1",
        "0",
        "12:00 UTC",
        "1",
        "% Invalid input",
        "exit_status: 'show bad' exited 1: % Invalid input",
    ]
    assert not outcome.ok and outcome.ended
    assert error_of(outcome).startswith("exit_status:")


# -- which job is watched next ---------------------------------------------------------------


def test_watchers_take_the_oldest_job_and_come_back_later_to_one_still_running() -> None:
    board = Board(rows("a", "b", "c"))
    for index, outcome in enumerate(board.outcomes):
        board.queued(outcome, {"id": f"j{index}", "status": "queued"})
    board.submission_over()
    assert [board.take(0), board.take(0)] == ["j0", "j1"]
    board.observe("j0", {"id": "j0", "status": "started"})
    assert board.take(0) == "j2"  # j0 is asked again only after a pause
    assert board.take(0) is None
    time.sleep(RECHECK_FIRST + 0.05)
    assert board.take(0) == "j0"
    for job_id in ("j0", "j1", "j2"):
        board.observe(job_id, {"id": job_id, "status": "finished", "result": {"type": 1}})
    assert board.over() and board.take(0) is None
    assert board.counts().done == 3


def test_a_final_status_is_never_undone_by_a_late_answer() -> None:
    board = Board(rows("a"))
    (outcome,) = board.outcomes
    board.queued(outcome, {"id": "j0", "status": "queued"})
    board.cancelled("j0", "canceled before it ran")
    board.observe("j0", {"id": "j0", "status": "queued"})
    assert outcome.status == "canceled" and error_of(outcome).startswith("canceled:")
