"""Pure pieces of issue 28's fixes: the attempt limiter, the salt cache, the log scrubber, the Host check, the
trusted-proxy setting, the cover size steps (no database, no server)."""

from __future__ import annotations

import logging

import pytest

from musicindex.config import Settings
from musicindex.errors import ConfigError, TooManyAttemptsError
from musicindex.logscrub import ScrubFilter, scrub
from musicindex.media.covers import SIZE_STEPS, check_size
from musicindex.users.accounts import limit_key
from musicindex.users.limiter import AttemptLimiter, address_key
from musicindex.users.replay import SaltCache
from musicindex.web.security import host_allowed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _retry_in(lim: AttemptLimiter, addr: str, account: str) -> int | None:
    try:
        lim.check(addr, account)
    except TooManyAttemptsError as exc:
        assert str(exc) == f"too many attempts, retry in {exc.retry_after} s"
        return exc.retry_after
    return None


def test_the_pair_cools_down_and_its_cooldown_doubles_while_others_stay_free():
    clock = Clock()
    lim = AttemptLimiter(pair_limit=3, pair_window=60, pair_cooldown=60, address_limit=100, clock=clock)
    lim.fail("10.0.0.1", "bob")
    clock.now += 61  # outside the window: forgotten
    lim.fail("10.0.0.1", "bob")
    lim.fail("10.0.0.1", "bob")
    assert _retry_in(lim, "10.0.0.1", "bob") is None
    lim.fail("10.0.0.1", "bob")
    assert _retry_in(lim, "10.0.0.1", "bob") == 60
    # the same address for another account, and another address for the same account: free (no lockout of the
    # house behind one NAT, no lockout of bob by a stranger)
    assert _retry_in(lim, "10.0.0.1", "alice") is None and _retry_in(lim, "10.0.0.2", "bob") is None
    clock.now += 61
    assert _retry_in(lim, "10.0.0.1", "bob") is None
    for _ in range(3):  # a stale client keeps failing: the next cool-down is twice as long
        lim.fail("10.0.0.1", "bob")
    assert _retry_in(lim, "10.0.0.1", "bob") == 120
    clock.now += 121
    lim.fail("10.0.0.1", "bob")
    lim.succeed("10.0.0.1", "bob")  # a success forgets the pair's failures and blocks
    lim.fail("10.0.0.1", "bob")
    lim.fail("10.0.0.1", "bob")
    assert _retry_in(lim, "10.0.0.1", "bob") is None


def test_the_address_budget_stops_one_client_trying_many_names():
    clock = Clock()
    lim = AttemptLimiter(pair_limit=10, address_limit=20, address_window=900, address_cooldown=900, clock=clock)
    for i in range(19):
        lim.fail("192.0.2.7", f"name{i}")
    assert _retry_in(lim, "192.0.2.7", "anyone") is None
    lim.fail("192.0.2.7", "name19")
    assert _retry_in(lim, "192.0.2.7", "anyone") == 900
    assert _retry_in(lim, "192.0.2.8", "anyone") is None


def test_addresses_and_names_are_keyed_once():
    # an IPv6 host owns its /64: every address in it is one key; v4-mapped is the v4 address
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1" and address_key(None) == "local"
    # the limiter's account is the lookup's key: a fullwidth or upper-case spelling gets no fresh tries
    assert limit_key("ａｌｉｃｅ") == limit_key("ALICE") == limit_key("alice") == "alice"
    assert limit_key(None) == limit_key("") == ":invalid" and len(limit_key("x" * 5000)) == 65


def test_a_token_and_salt_pair_is_bound_to_its_first_address():
    clock = Clock()
    cache = SaltCache(ttl=600, per_user=3, clock=clock)
    assert cache.first_use(1, "salt", "10.0.0.1")
    assert cache.first_use(1, "salt", "10.0.0.1")  # the same client reusing its token: fine
    assert not cache.first_use(1, "salt", "10.0.0.9")  # a replay from elsewhere: refused
    assert cache.first_use(2, "salt", "10.0.0.9")  # another account's salt is another pair
    clock.now += 601
    assert cache.first_use(1, "salt", "10.0.0.9")  # forgotten after the time
    for salt in ("a", "b", "c", "d"):  # bounded per account: the oldest goes first
        cache.first_use(3, salt, "10.0.0.1")
    assert cache.first_use(3, "a", "10.0.0.2") and not cache.first_use(3, "d", "10.0.0.2")
    cache.forget(3)
    assert cache.first_use(3, "d", "10.0.0.2")


@pytest.mark.parametrize(
    "line",
    [
        '127.0.0.1:5 - "GET /rest/ping.view?u=alice&p=hunter2secret&v=1.16.1&c=x HTTP/1.1" 200',
        '127.0.0.1:5 - "GET /rest/stream?u=alice&p=enc:68756e74657232736563726574&id=tr-1 HTTP/1.1" 200',
        '127.0.0.1:5 - "GET /rest/ping?u=alice&t=hunter2secret&s=hunter2secret HTTP/1.1" 200',
        '127.0.0.1:5 - "GET /rest/ping?apiKey=hunter2secret HTTP/1.1" 200',
        "headers: {'authorization': 'Bearer hunter2secret', 'cookie': 'mi_session=hunter2secret.sig'}",
        "Authorization: Basic hunter2secret",
        "form password=hunter2secret&name=bob",
        "set-cookie: mi_session=hunter2secret; Path=/",
    ],
)
def test_credentials_are_scrubbed_from_log_lines(line):
    assert "hunter2secret" not in scrub(line) and "68756e74" not in scrub(line)
    assert "***" in scrub(line)


def test_the_scrub_filter_keeps_uvicorns_access_arguments_a_tuple(caplog):
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/rest/ping?u=a&p=hunter2secret", "1.1", 200), None,
    )  # fmt: skip
    assert ScrubFilter().filter(record)
    assert isinstance(record.args, tuple) and record.args[2] == "/rest/ping?u=a&p=***"
    assert "hunter2secret" not in record.getMessage()
    assert scrub("offset=10&format=json&status=ok&artist=t") == "offset=10&format=json&status=ok&artist=t"


def test_the_host_header_is_a_name_and_a_port_only():
    allowed = ["localhost", "127.0.0.1", "::1", "[::1]"]
    for good in ("localhost", "localhost:8765", "127.0.0.1:80", "[::1]:8765", "LOCALHOST"):
        assert host_allowed(good, allowed), good
    for bad in (
        "localhost:80@evil.example", "localhost@evil.example", "evil.example", "localhost:80/x", "localhost:8x",
        "localhost:", "localhost:80:90", "", None, "localhost%00", "localhost:80#x",
    ):  # fmt: skip
        assert not host_allowed(bad, allowed), bad


def test_trusted_proxies_and_connection_settings_are_validated(tmp_path):
    s = Settings.from_env({"MUSICINDEX_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,::1"}, home=tmp_path)
    assert [str(n) for n in s.trusted_proxy_networks] == ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]
    for env in (
        {"MUSICINDEX_TRUSTED_PROXIES": "*"},
        {"MUSICINDEX_TRUSTED_PROXIES": "proxy.lan"},
        {"MUSICINDEX_HEADER_TIMEOUT": "0"},
        {"MUSICINDEX_MAX_CONNECTIONS_PER_ADDRESS": "0"},
    ):
        with pytest.raises(ConfigError, match=next(iter(env))):
            Settings.from_env(env, home=tmp_path)


def test_cover_sizes_snap_to_a_few_steps_never_above_the_source():
    made = {check_size(n) for n in range(1, 5000)}
    assert made == set(SIZE_STEPS)
    assert (
        check_size(None) is None
        and check_size(600) == 1024
        and check_size(65) == 128
        and check_size(64) == 64
        and check_size(1) == 32
    )
