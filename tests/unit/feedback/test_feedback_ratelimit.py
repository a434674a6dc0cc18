"""Token buckets and client addresses of the rate limits (services/feedback/ratelimit.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from services.feedback.ratelimit import Limits, RateLimited, TokenBuckets


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def request_from(host: str) -> Any:
    return SimpleNamespace(client=SimpleNamespace(host=host))


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(60, clock=clock)  # one a second, bursts of 60
    assert all(buckets.take("a") == 0 for _ in range(60))
    wait = buckets.take("a")
    assert wait == pytest.approx(1.0)
    assert buckets.take("b") == 0  # another key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)  # a refused request takes nothing
    clock.now += 0.5
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0


def test_a_bucket_refills_no_further_than_its_burst() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(60, burst=5, clock=clock)
    clock.now += 3600
    assert sum(1 for _ in range(10) if buckets.take("a") == 0) == 5


def test_wait_takes_nothing() -> None:
    buckets = TokenBuckets(60, burst=1, clock=FakeClock())
    assert buckets.wait("a") == 0 and buckets.wait("a") == 0
    assert buckets.take("a") == 0 and buckets.wait("a") > 0


def test_the_number_of_buckets_is_bounded() -> None:
    buckets = TokenBuckets(60, burst=1, max_keys=3, clock=FakeClock())
    for key in "abcd":
        buckets.take(key)
    assert len(buckets._buckets) == 3 and "a" not in buckets._buckets


def test_client_addresses_exempt_and_ipv6_grouped_by_64() -> None:
    limits = Limits.build(
        page_per_minute=1,
        failed_lookups_per_hour=1,
        staff_per_minute=1,
        exempt=["127.0.0.0/8", "::1/128"],
    )
    assert limits.client_key(request_from("127.0.0.1")) is None
    assert limits.client_key(request_from("::1")) is None
    assert limits.client_key(request_from("192.0.2.7")) == "192.0.2.7"
    assert limits.client_key(request_from("2001:db8:1:2::5")) == limits.client_key(
        request_from("2001:db8:1:2:ffff::1")
    )
    assert limits.client_key(request_from("2001:db8:1:3::5")) != limits.client_key(
        request_from("2001:db8:1:2::5")
    )
    assert limits.client_key(request_from("::ffff:192.0.2.7")) == "192.0.2.7"


def test_failed_lookups_stop_an_address_and_only_that_address() -> None:
    limits = Limits.build(page_per_minute=100, failed_lookups_per_hour=2, staff_per_minute=1)
    scraper, resident = request_from("192.0.2.1"), request_from("192.0.2.2")
    limits.check_page(scraper)
    limits.failed_lookup(scraper)
    limits.check_page(scraper)
    limits.failed_lookup(scraper)
    with pytest.raises(RateLimited) as refused:
        limits.check_page(scraper)
    assert refused.value.face == "failed_lookups" and refused.value.retry_after >= 1
    limits.check_page(resident)


def test_exempt_addresses_are_never_limited() -> None:
    limits = Limits.build(
        page_per_minute=1, failed_lookups_per_hour=1, staff_per_minute=1, exempt=["127.0.0.0/8"]
    )
    local = request_from("127.0.0.1")
    for _ in range(10):
        limits.check_page(local)
        limits.failed_lookup(local)


def test_the_staff_limit_is_per_token() -> None:
    limits = Limits.build(page_per_minute=1, failed_lookups_per_hour=1, staff_per_minute=2)
    limits.check_staff("balie")
    limits.check_staff("balie")
    with pytest.raises(RateLimited) as refused:
        limits.check_staff("balie")
    assert refused.value.face == "staff" and refused.value.retry_after == 30
    limits.check_staff("privacy")
