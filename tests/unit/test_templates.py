"""Templates without a controller: the Jinja2 sandbox and its limits, TextFSM and TTP parsing
(inline and library templates), unsafe TTP features, and where template text may come from."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from netpulse.config import Settings, load_settings
from netpulse.plugins.templates.jinja2 import Jinja2Renderer
from netpulse.plugins.templates.textfsm import TextFSMParser
from netpulse.plugins.templates.ttp import TTPParser
from netpulse.templates import service
from netpulse.templates.contract import TemplateError, TemplateNotFound, TrustedText, registry
from netpulse.templates.sources import load_template


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integration fixtures export NETPULSE_* variables; these tests set their own."""
    for key in list(os.environ):
        if key.startswith("NETPULSE_"):
            monkeypatch.delenv(key)


def settings(directory: Path | None = None, allow_http: bool = False, **hooks: Any) -> Settings:
    return load_settings(
        templates={"directory": directory, "allow_http": allow_http, "max_bytes": 4096},
        webhooks={"allow_cidrs": [], "deny_cidrs": [], "deny_private": False, **hooks},
    )


def show_ip_int_brief(count: int = 50) -> str:
    header = "Interface              IP-Address      OK? Method Status                Protocol\n"
    rows = [
        f"GigabitEthernet0/{i:<7} 10.0.{i}.1{' ' * (7 - len(str(i)))}YES manual up"
        f"                    up      "
        for i in range(count)
    ]
    return header + "\n".join(rows) + "\n"


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(TemplateError) as info:
        call(*args)
    return str(info.value)


# -- registry ----------------------------------------------------------------------------


def test_registry_finds_the_builtin_plugins() -> None:
    assert {"jinja2", "textfsm", "ttp"} <= set(registry.names())
    assert service.renderer_names() == ["jinja2"]
    assert service.parser_names() == ["textfsm", "ttp"]


def test_unknown_plugin_lists_the_valid_names() -> None:
    message = refused(service.render, "textfsm", "x", {}, settings())
    assert message == "unknown renderer 'textfsm'; valid: jinja2"
    assert "valid: textfsm, ttp" in refused(service.parse, "nope", "x", "out", {}, settings())


# -- jinja2 ------------------------------------------------------------------------------

JINJA = Jinja2Renderer()


def test_render_loops_without_blank_lines() -> None:
    template = (
        "hostname {{ hostname }}\n"
        "{% for intf in interfaces %}\n"
        "interface {{ intf.name }}\n"
        "  {% if intf.desc %}\n"
        " description {{ intf.desc }}\n"
        "  {% endif %}\n"
        "{% endfor %}\n"
    )
    context = {"hostname": "r1", "interfaces": [{"name": "Gi0/1", "desc": "uplink"}]}
    context["interfaces"].append({"name": "Gi0/2", "desc": ""})
    assert JINJA.render(template, context) == (
        "hostname r1\ninterface Gi0/1\n description uplink\ninterface Gi0/2\n"
    )


def test_undefined_variable_is_named_with_its_line() -> None:
    message = refused(
        JINJA.render, "hostname {{ hostname }}\nntp server {{ ntp_server }}", {"hostname": "r1"}
    )
    assert message == "undefined variable 'ntp_server' (line 2)"


def test_undefined_attribute_is_named() -> None:
    message = refused(JINJA.render, "mtu {{ intf.mtu }}", {"intf": {}})
    assert "has no attribute 'mtu'" in message and "(line 1)" in message


def test_syntax_error_names_the_line() -> None:
    message = refused(JINJA.render, "ok\n{% for x in y %}\n{{ x }", {})
    assert message.startswith("template syntax error (line 3)")


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ range.__self__ }}",
        "{{ (1).__class__ }}",
        "{{ dict.mro() }}",
        "{{ [].append(1) }}",
        "{{ {}.update(a=1) }}",
        "{{ '{0.__class__.__mro__}'.format(1) }}",
        "{{ x.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{% include '/etc/passwd' %}",
        "{% import '/etc/passwd' as p %}",
        "{% extends '/etc/hostname' %}",
    ],
)
def test_sandbox_escapes_are_refused(template: str) -> None:
    message = refused(JINJA.render, template, {"x": Path("/")})
    assert "root:" not in message and "<module" not in message
    assert any(
        word in message
        for word in ("sandbox", "unsafe", "undefined", "not supported", "has no attribute")
    ), message


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'x' * 10**9 }}", "'*' repetition"),
        ("{{ 10 ** 100000000 }}", "too large to compute"),
        ("{{ (10**10000) * (10**10000) }}", "product over"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "operations",
        ),
        ("{{ 'a'|center(1000000000) }}", "center width"),
        ("{{ '%999999999s' % 1 }}", "format string"),
        ("{{ '{:>999999999}'.format(1) }}", "format string"),
        ("{% set s = 'x' * 600000 %}{{ s ~ s }}", "'~' concatenation"),
        (
            "{% set ns = namespace(s='xx') %}{% for i in range(64) %}"
            "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "concatenation",
        ),
        ("{% set s = 'x' * 100000 %}{{ ([s] * 100)|join }}", "repetition"),
        ("{% set s = 'x' * 100000 %}{{ range(100)|join(s) }}", "join"),
        ("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "longer than"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed"),
    ],
)
def test_resource_limits(template: str, expected: str) -> None:
    assert expected in refused(JINJA.render, template, {})


def test_limits_leave_ordinary_templates_alone() -> None:
    template = "{% for i in range(2000) %}interface Gi0/{{ i }}\n{% endfor %}"
    assert JINJA.render(template, {}).count("\n") == 2000
    assert JINJA.render("{{ 'ab'|center(6) }}|{{ 2 ** 64 }}|{{ [1, 2]|join(',') }}", {}) == (
        "  ab  |18446744073709551616|1,2"
    )


def test_context_must_be_an_object() -> None:
    assert "JSON object" in refused(JINJA.render, "x", ["not", "a", "dict"])


# -- textfsm -----------------------------------------------------------------------------

TEXTFSM = TextFSMParser()
INLINE_FSM = (
    "Value INTF (\\S+)\nValue IP (\\S+)\nValue STATUS (up|down|administratively down)\n\n"
    "Start\n  ^${INTF}\\s+${IP}\\s+\\w+\\s+\\w+\\s+${STATUS} -> Record\n"
)
NTC = {"platform": "cisco_ios", "command": "show ip interface brief"}


def test_textfsm_inline_template_keeps_value_names() -> None:
    records = TEXTFSM.parse(INLINE_FSM, show_ip_int_brief(3), {})
    assert records == [
        {"INTF": f"GigabitEthernet0/{i}", "IP": f"10.0.{i}.1", "STATUS": "up"} for i in range(3)
    ]


def test_ntc_lookup_by_platform_and_command() -> None:
    records = TEXTFSM.parse(None, show_ip_int_brief(50), NTC)
    assert len(records) == 50
    assert records[7] == {
        "interface": "GigabitEthernet0/7",
        "ip_address": "10.0.7.1",
        "status": "up",
        "proto": "up",
    }
    from ntc_templates.parse import parse_output

    assert records == parse_output(data=show_ip_int_brief(50), **NTC)


def test_ntc_lookup_accepts_abbreviations_nested_args_and_netmiko_types() -> None:
    out = show_ip_int_brief(2)
    nested = {"ntc_template_args": {"platform": "cisco_ios_telnet", "command": "sh ip int br"}}
    assert len(TEXTFSM.parse(None, out, nested)) == 2
    by_name = {"use_ntc_template": True}
    assert len(TEXTFSM.parse("cisco_ios_show_ip_interface_brief", out, by_name)) == 2


def test_ntc_lookup_without_a_template_is_a_clear_error() -> None:
    with pytest.raises(TemplateNotFound) as info:
        TEXTFSM.parse(None, "x", {"platform": "cisco_ios", "command": "show bogus thing"})
    assert str(info.value) == (
        "ntc-templates has no template for platform 'cisco_ios' and command 'show bogus thing'"
    )
    assert "not an ntc-templates template name" in refused(
        TEXTFSM.parse, "../../../etc/passwd", "x", {"use_ntc_template": True}
    )
    assert "needs a template" in refused(TEXTFSM.parse, None, "x", {})


def test_textfsm_bad_template_names_the_problem() -> None:
    message = refused(TEXTFSM.parse, "Value X (\\d+)\nValue Y (\\d+\n\nStart\n  ^${X}", "1", {})
    assert message.startswith("the TextFSM template is invalid:") and "Line 2" in message
    message = refused(TEXTFSM.parse, "Value X (\\d+)\n\nStart\n  ^${X} -> Bogus", "1", {})
    assert message.endswith("State 'Bogus' not found, referenced in state 'Start'")


def test_textfsm_output_that_does_not_match_is_an_error_unless_allowed() -> None:
    message = refused(TEXTFSM.parse, INLINE_FSM, "% Invalid input detected at '^' marker.", {})
    assert "matched nothing in the output" in message
    assert TEXTFSM.parse(INLINE_FSM, "nothing", {"allow_empty": True}) == []
    assert TEXTFSM.parse(INLINE_FSM, "", {}) == []  # no output, nothing to match
    message = refused(TEXTFSM.parse, "Value X (\\d+)\n\nStart\n  ^x -> Error nope", "x", {})
    assert message.startswith("the TextFSM template rejected the output")


# -- ttp ---------------------------------------------------------------------------------

TTP = TTPParser()
CONFIG = """interface Loopback0
 description Router-id-loopback
 ip address 192.168.0.113 255.255.255.0
!
interface Vlan778
 ip address 10.7.7.1 255.255.255.0
!
"""
INLINE_TTP = """interface {{ interface }}
 description {{ description | ORPHRASE }}
 ip address {{ ip }} {{ mask }}
"""


def test_ttp_inline_template_gives_a_flat_list() -> None:
    assert TTP.parse(INLINE_TTP, CONFIG, {}) == [
        {
            "interface": "Loopback0",
            "description": "Router-id-loopback",
            "ip": "192.168.0.113",
            "mask": "255.255.255.0",
        },
        {"interface": "Vlan778", "ip": "10.7.7.1", "mask": "255.255.255.0"},
    ]
    grouped = f'<group name="interfaces">\n{INLINE_TTP}</group>'
    result = TTP.parse(grouped, CONFIG, {"structure": "dictionary"})
    assert result["_root_template_"][0]["interfaces"][1]["interface"] == "Vlan778"


def test_ttp_templates_lookup() -> None:
    options = {"platform": "cisco_ios", "command": "show running-config | section interface"}
    result = TTP.parse(None, CONFIG, options)
    assert [i["name"] for i in result] == ["Loopback0", "Vlan778"]
    nested = {"use_ttp_template": True, "ttp_template_args": options}
    assert TTP.parse("ignored", CONFIG, nested) == result
    path = "ttp://platform/cisco_ios_show_running_config_pipe_section_interface.txt"
    assert TTP.parse(path, CONFIG, {}) == result
    with pytest.raises(TemplateNotFound):
        TTP.parse(None, CONFIG, {"platform": "cisco_ios", "command": "show nothing"})
    with pytest.raises(TemplateNotFound):
        TTP.parse("ttp://platform/../../../../etc/passwd", CONFIG, {})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("<macro>\ndef f(data):\n    return data\n</macro>\n" + INLINE_TTP, "<macro> tags"),
        ("<vars>\nx = __import__('os').getpid()\n</vars>\n" + INLINE_TTP, "<vars> tags"),
        ("<lookup name='x' load='python'>\nx = 1\n</lookup>\n" + INLINE_TTP, "<lookup> tags"),
        ("<input load='text'>/etc/passwd</input>\n" + INLINE_TTP, "<input> tags"),
        ("<extend template='/etc/passwd'/>", "<extend> tags"),
        ("<output returner='file' url='/tmp/'/>\n" + INLINE_TTP, "<output> tags"),
        ("<template base_path='/etc'><group>\n{{ x }}\n</group></template>", "base_path"),
        ("<group name='x' input='/etc'>\nintf {{ x }}\n</group>", "attribute 'input'"),
        ("<group name='x' contains=\"__import__('os')\">\nintf {{ x }}\n</group>", "arguments"),
        ("<group name='x' functions=\"contains(open('/etc/passwd'))\">\n{{ x }}\n</group>", "arg"),
        ("interface {{ interface | contains(__import__('os').getcwd()) }}", "arguments"),
        ("interface {{ interface | contains(*['a']) }}", "unpacking"),
        ("interface {{ interface | contains(print) }}", "arguments"),
        ("interface {{ interface | chain('contains(1)') }}", "function 'chain'"),
        ("interface {{ interface | dns }}", "function 'dns'"),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<group>\n{{ x }}\n</group>', "DOCTYPE"),
    ],
)
def test_ttp_features_that_run_code_are_refused_inline(template: str, expected: str) -> None:
    message = refused(TTP.parse, template, CONFIG, {})
    assert expected in message, message


def test_ttp_never_reads_a_path_given_as_output_or_template() -> None:
    assert TTP.parse("{{ line | _line_ }}", "/etc/passwd", {}) == [{"line": "/etc/passwd"}]
    message = refused(TTP.parse, "/etc/passwd", CONFIG, {})
    assert "matched nothing" in message


def test_trusted_ttp_templates_may_use_macros(tmp_path: Path) -> None:
    macro = (
        "<macro>\ndef shout(data):\n    return data.upper()\n</macro>\n"
        "<group>\ninterface {{ interface | macro('shout') }}\n</group>\n"
    )
    assert "<macro> tags" in refused(TTP.parse, macro, CONFIG, {})
    (tmp_path / "shout.ttp").write_text(macro)
    parsed = service.parse("ttp", "file:shout.ttp", CONFIG, {}, settings(tmp_path))
    assert parsed == [{"interface": "LOOPBACK0"}, {"interface": "VLAN778"}]


def test_ttp_errors_are_sentences() -> None:
    assert "not valid XML" in refused(TTP.parse, "<group>\n{{ x }}\n</grp>", CONFIG, {})
    assert "matched nothing" in refused(TTP.parse, "nothing {{ here }} at all", CONFIG, {})
    assert TTP.parse("nothing {{ here }} at all", CONFIG, {"allow_empty": True}) == [{}]
    assert "structure must be" in refused(TTP.parse, INLINE_TTP, CONFIG, {"structure": "x"})


# -- sources: inline and file: -----------------------------------------------------------


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "ios").mkdir(parents=True)
    (root / "ios" / "intf.j2").write_text("interface {{ name }}\n")
    (root / "big.j2").write_text("x" * 5000)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "inside").symlink_to(root / "ios" / "intf.j2")
    return root


def test_inline_text_is_the_template() -> None:
    assert load_template("hostname {{ h }}", settings()) == "hostname {{ h }}"
    assert load_template(None, settings()) is None
    assert "larger than templates.max_bytes" in refused(load_template, "x" * 5000, settings())


def test_file_templates_come_from_the_directory_only(template_dir: Path) -> None:
    s = settings(template_dir)
    text = load_template("file:ios/intf.j2", s)
    assert text == "interface {{ name }}\n" and isinstance(text, TrustedText)
    assert load_template("file:inside", s) == text  # a symlink that stays inside is fine
    assert service.render(None, "file:ios/intf.j2", {"name": "Gi0/1"}, s) == "interface Gi0/1"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("file:../secret.txt", "contains '..'"),
        ("file:ios/../../secret.txt", "contains '..'"),
        ("file:/etc/passwd", "absolute path"),
        ("file:///etc/passwd", "absolute path"),
        ("file:escape", "outside the template directory"),
        ("file:", "needs a template name"),
        ("file:big.j2", "larger than templates.max_bytes"),
    ],
)
def test_file_templates_cannot_leave_the_directory(
    template_dir: Path, ref: str, expected: str
) -> None:
    assert expected in refused(load_template, ref, settings(template_dir))


def test_missing_file_and_no_directory() -> None:
    with pytest.raises(TemplateNotFound):
        load_template("file:nope.j2", settings(Path("/")))
    assert "file: templates are off" in refused(load_template, "file:x.j2", settings())


# -- sources: http(s) --------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if self.path == "/big":
            body = b"x" * 10_000
        elif self.path == "/intf.j2":
            body = b"interface {{ name }}"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_is_refused_when_not_enabled(http_server: str) -> None:
    message = refused(
        load_template, f"{http_server}/intf.j2", settings(allow_cidrs=["127.0.0.0/8"])
    )
    assert message == (
        "fetching templates over http(s) is off: set templates.allow_http "
        "(NETPULSE_TEMPLATES__ALLOW_HTTP)=true"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata service"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata service"),
        ("http://127.0.0.1:1/x.j2", "loopback"),
        ("http://localhost:1/x.j2", "loopback"),
        ("http://0.0.0.0/x.j2", "unspecified"),
        ("http://user:pw@example.com/x", "credentials"),
    ],
)
def test_http_fetch_is_refused_by_the_ssrf_guard(url: str, expected: str) -> None:
    message = refused(load_template, url, settings(allow_http=True))
    assert expected in message, message
    if "credentials" not in expected:
        assert message.startswith("the template URL was refused by the SSRF guard")


def test_ftp_looking_text_is_just_inline_text() -> None:
    assert load_template("ftp://example.com/x", settings(allow_http=True)) == "ftp://example.com/x"


def test_http_fetch_through_the_guard(http_server: str) -> None:
    s = settings(allow_http=True, allow_cidrs=["127.0.0.0/8"])
    text = load_template(f"{http_server}/intf.j2", s)
    assert text == "interface {{ name }}" and not isinstance(text, TrustedText)
    assert "redirect (302)" in refused(load_template, f"{http_server}/redirect", s)
    assert "larger than templates.max_bytes" in refused(load_template, f"{http_server}/big", s)
    assert "HTTP 404" in refused(load_template, f"{http_server}/missing", s)
    assert "deny list" in refused(
        load_template,
        f"{http_server}/intf.j2",
        settings(allow_http=True, allow_cidrs=["127.0.0.0/8"], deny_cidrs=["127.0.0.1/32"]),
    )


def test_fetched_ttp_templates_are_checked_like_inline_ones(http_server: str) -> None:
    s = settings(allow_http=True, allow_cidrs=["127.0.0.0/8"])
    assert service.render("jinja2", f"{http_server}/intf.j2", {"name": "Gi1"}, s) == (
        "interface Gi1"
    )


# -- service -----------------------------------------------------------------------------


def test_render_lines_are_what_a_job_sends() -> None:
    lines = service.render_lines(
        None, "interface {{ i }}  \n\n description {{ d }}\n", {"i": "Gi1", "d": "x"}, settings()
    )
    assert lines == ["interface Gi1", " description x"]


def test_parse_each_keeps_going_after_a_failure() -> None:
    outcomes = service.parse_each(
        "textfsm", None, [show_ip_int_brief(2), "% Invalid input"], NTC, settings()
    )
    assert outcomes[0].ok and len(outcomes[0].parsed) == 2
    assert not outcomes[1].ok and "matched nothing" in (outcomes[1].error or "")
    broken = service.parse_each("textfsm", "file:x", ["a", "b"], {}, settings())
    assert [o.error for o in broken] == [
        "file: templates are off: set templates.directory "
        "(NETPULSE_TEMPLATES__DIRECTORY) to enable them"
    ] * 2
