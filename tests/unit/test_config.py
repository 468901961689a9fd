"""Settings: environment, YAML, and start-up errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from netpulse.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("NETPULSE_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = load_settings()
    assert (s.server.host, s.server.port) == ("127.0.0.1", 9000)
    assert (s.job.ttl, s.job.execution_timeout, s.job.result_ttl) == (300, 300, 300)
    assert s.node.pinned_concurrency == 1 and s.node.fifo_concurrency == 2
    assert s.webhooks.retention_seconds == 7 * 86400


def test_env_overrides_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "np.yaml"
    config.write_text("server:\n  port: 9100\njob:\n  ttl: 60\n")
    monkeypatch.setenv("NETPULSE_CONFIG_FILE", str(config))
    monkeypatch.setenv("NETPULSE_JOB__TTL", "90")
    s = load_settings()
    assert s.server.port == 9100 and s.job.ttl == 90


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("NETPULSE_SERVER__PORT", "70000", "server.port"),
        ("NETPULSE_REDIS__URL", "http://x", "redis.url"),
        ("NETPULSE_WEBHOOKS__SIGNING_SECRET", "not-a-secret", "webhooks.signing_secret"),
        ("NETPULSE_WEBHOOKS__ALLOW_CIDRS", '["10.0.0.0/33"]', "webhooks.allow_cidrs"),
        ("NETPULSE_WEBHOOKS__ALLOW_CIDRS", "10.0.0.0/8", "JSON"),
        ("NETPULSE_NODE__SCHEDULER", "random_walk", "node.scheduler"),
        ("NETPULSE_WEBHOOKS__RETRY_INTERVALS", "[-1]", "webhooks.retry_intervals"),
    ],
)
def test_wrong_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert named in str(caught.value)


def test_unreadable_yaml_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    monkeypatch.setenv("NETPULSE_CONFIG_FILE", str(bad))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings()


ORIGINAL_CONFIG = """\
server:
  host: 127.0.0.1
  port: 9100
  api_key: np-secret
  api_key_name: X-NETPULSE-KEY
  gunicorn_worker: 4
job:
  ttl: 1800
  timeout: 123
  result_ttl: 400
worker:
  scheduler: "load_weighted_random"
  ttl: 300
  pinned_per_node: 128
redis:
  host: 127.0.0.1
  port: 6390
  password: "p@ss"
  tls:
    enabled: false
  sentinel:
    enabled: false
  key:
    node_info_map: netpulse:node_info_map
plugin:
  driver: netpulse/plugins/drivers/
log:
  level: DEBUG
"""


def test_the_original_netpulse_config_file_carries_over(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(ORIGINAL_CONFIG)
    monkeypatch.setenv("NETPULSE_CONFIG_FILE", str(config))
    s = load_settings()
    assert (s.server.port, s.server.api_key_header) == (9100, "X-NETPULSE-KEY")
    assert (s.job.ttl, s.job.execution_timeout, s.job.result_ttl) == (1800, 123, 400)
    assert (s.node.scheduler, s.node.capacity) == ("load_weighted_random", 128)
    assert s.redis.url == "redis://:p%40ss@127.0.0.1:6390/0"
    assert s.log_level == "DEBUG"
    said = caplog.text
    assert "job.timeout is the original NetPulse's name; read as job.execution_timeout" in said
    assert "worker.scheduler is the original NetPulse's name; read as node.scheduler" in said
    for unused in ("server.gunicorn_worker", "worker.ttl", "redis.key", "plugin"):
        assert f"{unused} (original NetPulse) is not used" in said
    assert "p@ss" not in said


def test_our_name_wins_when_both_are_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("job:\n  timeout: 10\n  execution_timeout: 20\n")
    monkeypatch.setenv("NETPULSE_CONFIG_FILE", str(config))
    assert load_settings().job.execution_timeout == 20
    assert "job.timeout (the original NetPulse's name) is ignored" in caplog.text


def test_an_original_sentinel_setup_becomes_a_sentinel_url() -> None:
    from netpulse.config_original import translate

    data, _ = translate(
        {
            "redis": {
                "password": "pw",
                "sentinel": {
                    "enabled": True,
                    "host": "10.0.0.9",
                    "port": 26380,
                    "master_name": "np",
                },
            }
        }
    )
    assert data["redis"]["url"] == "redis+sentinel://:pw@10.0.0.9:26380/np"


def test_the_configuration_doc_lists_every_original_setting() -> None:
    from netpulse.config_original import NOT_USED, RENAMED

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    table = doc[doc.index("## An original NetPulse `config.yaml`") :]
    for old, new in RENAMED.items():
        assert f"| `{old}` | `{new}` |" in table
    for old in NOT_USED:
        assert f"| `{old}` | - |" in table
