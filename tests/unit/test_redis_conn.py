"""The Redis URL parser behind every connection: what a Sentinel URL may say, and the
sentences a person gets for a URL that cannot work (with the password masked)."""

from __future__ import annotations

import pytest

from netpulse.config import ConfigError, load_settings
from netpulse.runtime.redis_conn import (
    DEFAULT_SENTINEL_PORT,
    RedisURL,
    _master_kwargs,
    _sentinel_kwargs,
    parse_redis_url,
    redact_url,
)


def test_sentinel_url_with_everything() -> None:
    url = (
        "redis+sentinel://app:s%40cret@10.0.0.1:26380,[::1]:26381,sentinel-3/my-master/2"
        "?sentinel_username=watch&sentinel_password=w%26pw"
    )
    target = parse_redis_url(url)
    assert target.is_sentinel and target.kind == "sentinel"
    assert target.sentinels == (
        ("10.0.0.1", 26380),
        ("::1", 26381),
        ("sentinel-3", DEFAULT_SENTINEL_PORT),
    )
    assert target.master_name == "my-master"
    assert target.db == 2
    assert (target.username, target.password) == ("app", "s@cret")
    assert (target.sentinel_username, target.sentinel_password) == ("watch", "w&pw")
    assert "s@cret" not in repr(target) and "w&pw" not in repr(target)


@pytest.mark.parametrize(
    ("url", "sentinels", "name", "db", "password"),
    [
        ("redis+sentinel://h:1/m", (("h", 1),), "m", 0, None),
        ("redis+sentinel://h:1/m/", (("h", 1),), "m", 0, None),
        ("redis+sentinel://h:1/m/0/", (("h", 1),), "m", 0, None),
        ("redis+sentinel://:pw@h1:1,h2:2/m/15", (("h1", 1), ("h2", 2)), "m", 15, "pw"),
        ("REDIS+SENTINEL://h/m", (("h", DEFAULT_SENTINEL_PORT),), "m", 0, None),
        ("redis+sentinel://h:1/my%20master", (("h", 1),), None, None, None),
    ],
)
def test_sentinel_url_forms(
    url: str, sentinels: tuple, name: str | None, db: int | None, password: str | None
) -> None:
    if name is None:
        with pytest.raises(ValueError, match="contains spaces"):
            parse_redis_url(url)
        return
    target = parse_redis_url(url)
    assert (target.sentinels, target.master_name, target.db, target.password) == (
        sentinels,
        name,
        db,
        password,
    )


@pytest.mark.parametrize(
    ("url", "kind", "db"),
    [
        ("redis://localhost:6379/0", "plain", 0),
        ("redis://:pw@localhost:6379/3", "plain", 3),
        ("rediss://user:pw@redis.example:6380", "plain", 0),
        ("unix:///run/redis/redis.sock?db=4", "plain", 4),
    ],
)
def test_plain_urls_pass_through(url: str, kind: str, db: int) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.db, target.is_sentinel) == (kind, db, False)
    assert target.url == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        (" redis://h/0", "spaces around it"),
        ("localhost:6379", "must start with redis://, rediss://, unix:// or redis+sentinel://"),
        ("http://h/0", "unknown scheme http://"),
        ("rediss+sentinel://h:1/m", "TLS to Sentinels is not supported"),
        ("sentinel://h:1/m", "is not supported"),
        ("redis://h:port/0", "not a valid Redis URL"),
        ("redis://h:6379/zero", "the database 'zero' after the address must be a number"),
        ("redis+sentinel://h:1", "names no master"),
        ("redis+sentinel://h:1/", "names no master"),
        ("redis+sentinel://h:1//0", "names no master"),
        ("redis+sentinel:///m", "empty Sentinel address"),
        ("redis+sentinel://h1:1,,h2:2/m", "empty Sentinel address"),
        ("redis+sentinel://h1:1,/m", "empty Sentinel address"),
        ("redis+sentinel://h:0/m", "port '0' of h must be a number from 1 to 65535"),
        ("redis+sentinel://h:65536/m", "from 1 to 65535"),
        ("redis+sentinel://h:abc/m", "port 'abc' of h"),
        ("redis+sentinel://h:/m", "port '' of h"),
        ("redis+sentinel://:26379/m", "has no host name"),
        ("redis+sentinel://::1:26379/m", "in brackets"),
        ("redis+sentinel://[::1/m", "not a valid [IPv6]:port"),
        ("redis+sentinel://[::1]x/m", "not a valid [IPv6]:port"),
        ("redis+sentinel://h:1/m/db0", "the database 'db0' after the master name"),
        ("redis+sentinel://h:1/m/-1", "must be a number"),
        ("redis+sentinel://h:1/m/0/extra", "too many path parts"),
        ("redis+sentinel://h:1/m?password=x", "unknown option 'password'"),
        ("redis+sentinel://h:1/m#frag", "percent-encoded"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url(url)
    assert message in str(caught.value)


def test_the_port_check_is_not_fooled_by_a_port_typed_as_an_empty_string() -> None:
    # 'h:' must not silently mean the default port: the user typed a colon and forgot the port.
    with pytest.raises(ValueError, match="port ''"):
        parse_redis_url("redis+sentinel://h:/m")


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:hunter2@h:0/m",
        "redis+sentinel://app:hunter2@h:1/m?sentinel_password=hunter2&x=1",
        "redis://:hunter2@h:port/0",
        "redis://hunter2@h:6379/zero",
        "rediss+sentinel://:hunter2@h/m",
        "http://:hunter2@h/",
    ],
)
def test_error_messages_never_show_the_password(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url(url)
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:pw@h:6379/0", "redis://user:***@h:6379/0"),
        ("redis://pw@h:6379/0", "redis://***@h:6379/0"),
        ("redis://:p@ss/w@rd@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        (
            "redis+sentinel://:pw@a:1,b:2/m/0?sentinel_password=spw&sentinel_username=u",
            "redis+sentinel://:***@a:1,b:2/m/0?sentinel_password=***&sentinel_username=u",
        ),
        ("no scheme but @ sign", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redacted_property() -> None:
    assert parse_redis_url("redis+sentinel://:pw@h:1/m").redacted == "redis+sentinel://:***@h:1/m"


def test_options_for_sentinels_and_master_are_kept_apart() -> None:
    target = parse_redis_url(
        "redis+sentinel://u:pw@h:1/m/3?sentinel_username=su&sentinel_password=spw"
    )
    kwargs = {"socket_timeout": 5.0, "health_check_interval": 30}
    sentinels = _sentinel_kwargs(target, kwargs)
    # The caller's socket options reach the Sentinels too; the master's login does not.
    assert sentinels == {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "username": "su",
        "password": "spw",
    }
    assert _master_kwargs(target, kwargs) == {
        "db": 3,
        "username": "u",
        "password": "pw",
        "socket_timeout": 5.0,
        "health_check_interval": 30,
    }


def test_sentinels_get_short_timeouts_by_default() -> None:
    target = parse_redis_url("redis+sentinel://h:1/m")
    assert _sentinel_kwargs(target, {}) == {"socket_connect_timeout": 2.0, "socket_timeout": 2.0}
    assert _master_kwargs(target, {}) == {"db": 0}


def test_redis_url_is_a_value() -> None:
    a = parse_redis_url("redis+sentinel://h:1,h:2/m")
    assert a == parse_redis_url("redis+sentinel://h:1,h:2/m")
    assert isinstance(a, RedisURL)


def test_settings_accept_a_sentinel_url() -> None:
    url = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/1"
    assert load_settings(redis={"url": url}).redis_url == url


def test_settings_refuse_a_bad_sentinel_url_with_a_sentence() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(redis={"url": "redis+sentinel://:hunter2@h1:26379,h2:26379"})
    message = str(caught.value)
    assert "setting redis.url (NETPULSE_REDIS__URL)" in message
    assert "names no master" in message
    assert "hunter2" not in message


def test_settings_refuse_an_unknown_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETPULSE_REDIS__URL", "memcached://h:11211")
    with pytest.raises(ConfigError, match="unknown scheme memcached://"):
        load_settings()
