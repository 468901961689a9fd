"""`/template/render` and `/template/parse` through a real controller process.

The session controller runs with the default template settings (no directory, no http).
A second controller, started here, has a template directory and http fetching on, to show
`file:` and the SSRF guard working end to end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from netpulse.runtime.ports import free_port
from tests.conftest import API_KEY
from tests.support import processes

SHOW_IP_INT_BRIEF = (
    "Interface              IP-Address      OK? Method Status                Protocol\n"
    + "".join(
        f"GigabitEthernet0/{i:<7} 10.0.{i}.1{' ' * (7 - len(str(i)))}YES manual up"
        "                    up      \n"
        for i in range(50)
    )
)
NTC = {"platform": "cisco_ios", "command": "show ip interface brief"}


def detail(reply: httpx.Response, status: int = 422) -> str:
    assert reply.status_code == status, reply.text
    return reply.json()["detail"]


# -- render --------------------------------------------------------------------------------


def test_render_returns_the_text(api: httpx.Client) -> None:
    body = {
        "name": "jinja2",
        "template": "hostname {{ host }}\n{% for v in vlans %}\nvlan {{ v }}\n{% endfor %}",
        "context": {"host": "r1", "vlans": [10, 20]},
    }
    reply = api.post("/template/render", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == "hostname r1\nvlan 10\nvlan 20\n"
    by_path = api.post(
        "/template/render/jinja2", json={k: body[k] for k in ("template", "context")}
    )
    assert by_path.json() == reply.json()


def test_undefined_variable_is_422_naming_it(api: httpx.Client) -> None:
    reply = api.post("/template/render", json={"template": "ip {{ addr }}\nmtu {{ mtu }}"})
    assert detail(reply) == "undefined variable 'addr' (line 1)"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ 'x' * 10**10 }}",
        "{% include '/etc/passwd' %}",
    ],
)
def test_sandbox_escapes_are_422(api: httpx.Client, template: str) -> None:
    message = detail(api.post("/template/render", json={"template": template}))
    assert "uid=" not in message and "root:" not in message
    # The controller is still serving.
    assert api.post("/template/render", json={"template": "ok"}).json() == "ok"


def test_render_errors_are_422_sentences(api: httpx.Client) -> None:
    assert detail(api.post("/template/render", json={"template": "{% if %}"})).startswith(
        "template syntax error (line 1)"
    )
    assert detail(api.post("/template/render/ttp", json={"template": "x"})) == (
        "unknown renderer 'ttp'; valid: jinja2"
    )
    assert "file: templates are off" in detail(
        api.post("/template/render", json={"template": "file:intf.j2"})
    )
    assert "over http(s) is off" in detail(
        api.post("/template/render", json={"template": "http://169.254.169.254/x"})
    )
    missing = api.post("/template/render", json={"context": {}})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == [
        "body",
        "template",
    ]


def test_templates_need_the_api_key(controller_url: str) -> None:
    reply = httpx.post(f"{controller_url}/template/render", json={"template": "x"})
    assert reply.status_code == 403


# -- parse ---------------------------------------------------------------------------------


def test_parse_with_ntc_templates(api: httpx.Client) -> None:
    reply = api.post(
        "/template/parse", json={"name": "textfsm", "context": SHOW_IP_INT_BRIEF, **NTC}
    )
    assert reply.status_code == 200, reply.text
    records = reply.json()
    assert len(records) == 50
    assert records[49] == {
        "interface": "GigabitEthernet0/49",
        "ip_address": "10.0.49.1",
        "status": "up",
        "proto": "up",
    }
    original_shape = {
        "use_ntc_template": True,
        "ntc_template_args": NTC,
        "context": SHOW_IP_INT_BRIEF,
    }
    assert api.post("/template/parse/textfsm", json=original_shape).json() == records


def test_parse_a_list_of_outputs_in_one_request(api: httpx.Client) -> None:
    outputs = [SHOW_IP_INT_BRIEF, SHOW_IP_INT_BRIEF.replace("10.0.", "10.9."), SHOW_IP_INT_BRIEF]
    reply = api.post("/template/parse", json={"context": outputs, **NTC})
    assert reply.status_code == 200, reply.text
    assert [len(r) for r in reply.json()] == [50, 50, 50]
    assert reply.json()[1][0]["ip_address"] == "10.9.0.1"
    outputs[1] = "% Invalid input detected at '^' marker."
    message = detail(api.post("/template/parse", json={"context": outputs, **NTC}))
    assert message.startswith("output 1: the ntc-templates template for 'cisco_ios'")


def test_parse_with_inline_textfsm_and_ttp(api: httpx.Client) -> None:
    fsm = "Value INTF (\\S+)\nValue IP (\\d\\S+)\n\nStart\n  ^${INTF}\\s+${IP}\\s+YES -> Record\n"
    reply = api.post("/template/parse", json={"template": fsm, "context": SHOW_IP_INT_BRIEF})
    assert reply.json()[0] == {"INTF": "GigabitEthernet0/0", "IP": "10.0.0.1"}
    ttp = "{{ interface }} {{ ip | IP }} YES {{ method }} {{ status }} {{ proto }}"
    reply = api.post("/template/parse/ttp", json={"template": ttp, "context": SHOW_IP_INT_BRIEF})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()) == 50 and reply.json()[3]["ip"] == "10.0.3.1"


def test_parse_with_ttp_templates(api: httpx.Client) -> None:
    config = "interface Loopback0\n description rid\n ip address 10.0.0.1 255.255.255.255\n!\n"
    body = {
        "name": "ttp",
        "context": config,
        "use_ttp_template": True,
        "ttp_template_args": {
            "platform": "cisco_ios",
            "command": "show running-config | section interface",
        },
    }
    reply = api.post("/template/parse", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()[0]["name"] == "Loopback0" and reply.json()[0]["description"] == "rid"


def test_bad_templates_are_422(api: httpx.Client) -> None:
    def parse(**body: Any) -> str:
        return detail(api.post("/template/parse", json={"context": SHOW_IP_INT_BRIEF, **body}))

    assert parse(template="Value X (\\d+\n\nStart\n  ^${X}").startswith(
        "the TextFSM template is invalid"
    )
    assert parse(template="Value X (nomatch)\n\nStart\n  ^${X} -> Record").startswith(
        "the TextFSM template matched nothing in the output"
    )
    assert parse(platform="cisco_ios", command="show bogus") == (
        "ntc-templates has no template for platform 'cisco_ios' and command 'show bogus'"
    )
    assert parse(name="ttp", template="<group>\n{{ x }}\n</grp>").startswith(
        "the TTP template is not valid XML"
    )
    assert parse(name="ttp", template="<macro>\ndef f(d):\n    return d\n</macro>").startswith(
        "<macro> tags cannot be used"
    )
    assert parse(name="ttp", template="{{ x | contains(__import__('os').getpid()) }}").startswith(
        "function arguments"
    )
    assert parse(name="jinja2", template="x") == "unknown parser 'jinja2'; valid: textfsm, ttp"
    assert (
        parse() == "textfsm parsing needs a template, or platform and command to find one in "
        "ntc-templates"
    )


def test_public_client_renders_and_parses(controller_url: str) -> None:
    from netpulse_sdk import NetPulseClient

    with NetPulseClient(base_url=controller_url, api_key=API_KEY) as client:
        assert client.render_template("vlan {{ id }}", {"id": 7}) == "vlan 7"
        parsed = client.parse_template(SHOW_IP_INT_BRIEF, name="textfsm", **NTC)
    assert len(parsed) == 50


# -- a controller with file: and http(s) on --------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = b"description {{ text }}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def template_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def open_api(
    netpulse_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """A controller with a template directory and http fetching (loopback allowlisted by the
    session's NETPULSE_WEBHOOKS__ALLOW_CIDRS, as webhooks are)."""
    root = tmp_path_factory.mktemp("open-controller")
    directory = root / "templates"
    directory.mkdir()
    (directory / "intf.j2").write_text("interface {{ name }}\n")
    (directory / "brief.textfsm").write_text(
        "Value INTF (\\S+)\n\nStart\n  ^${INTF}\\s+\\d\\S+\\s+YES -> Record\n"
    )
    (root / "secret.txt").write_text("secret")
    (directory / "escape.j2").symlink_to(root / "secret.txt")
    env = {
        **netpulse_env,
        "NETPULSE_TEMPLATES__DIRECTORY": str(directory),
        "NETPULSE_TEMPLATES__ALLOW_HTTP": "true",
    }
    port = free_port()
    process = processes.start(
        ["controller", "--host", "127.0.0.1", "--port", str(port)], env, root / "controller.log"
    )
    url = f"http://127.0.0.1:{port}"
    try:
        processes.wait_until(lambda: processes.http_ready(url), 60, "the second controller")
        with httpx.Client(base_url=url, headers={"X-API-KEY": API_KEY}, timeout=30) as client:
            yield client
    finally:
        processes.stop(process)


def test_file_templates_from_the_directory(open_api: httpx.Client) -> None:
    reply = open_api.post(
        "/template/render", json={"template": "file:intf.j2", "context": {"name": "Gi0/1"}}
    )
    assert reply.json() == "interface Gi0/1"
    reply = open_api.post(
        "/template/parse", json={"template": "file:brief.textfsm", "context": SHOW_IP_INT_BRIEF}
    )
    assert len(reply.json()) == 50
    for ref, expected in [
        ("file:../secret.txt", "contains '..'"),
        ("file:/etc/passwd", "absolute path"),
        ("file:escape.j2", "outside the template directory"),
        ("file:nope.j2", "there is no template file:nope.j2"),
    ]:
        assert expected in detail(open_api.post("/template/render", json={"template": ref}))


def test_http_templates_behind_the_ssrf_guard(open_api: httpx.Client, template_server: str) -> None:
    reply = open_api.post(
        "/template/render",
        json={"template": f"{template_server}/desc.j2", "context": {"text": "uplink"}},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == "description uplink"
    for url, expected in [
        ("http://169.254.169.254/latest/meta-data/", "is a cloud metadata service address"),
        ("http://[fd00:ec2::254]/", "cloud metadata service address"),
        ("http://0.0.0.0:80/", "unspecified"),
        (f"{template_server}/redirect", "redirects are not followed"),
    ]:
        message = detail(open_api.post("/template/render", json={"template": url}))
        assert expected in message, message
