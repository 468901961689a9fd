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
