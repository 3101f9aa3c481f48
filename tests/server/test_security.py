"""The rate limiter: a sliding minute per client address, in bounded memory."""

from __future__ import annotations

from server.security import RateLimiter


def test_a_client_gets_its_limit_per_sliding_minute() -> None:
    limiter = RateLimiter(3)
    assert [limiter.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("b", now=3)  # another address has its own window
    assert not limiter.allow("a", now=59.9)
    assert limiter.allow("a", now=60.0)  # the first request has left the window


def test_zero_disables_the_limit() -> None:
    limiter = RateLimiter(0)
    assert all(limiter.allow("a", now=0) for _ in range(1000))


def test_idle_clients_are_forgotten_so_memory_stays_bounded() -> None:
    limiter = RateLimiter(5, max_clients=100)
    for n in range(5000):  # a new address every second, each calling once
        limiter.allow(f"10.0.{n // 256}.{n % 256}", now=float(n))
    # Only the last minute's clients are needed; the rest are forgotten once 100 are tracked.
    assert len(limiter) <= 101


def test_active_clients_keep_their_count_when_idle_ones_are_pruned() -> None:
    limiter = RateLimiter(2, max_clients=10)
    assert limiter.allow("busy", now=0) and limiter.allow("busy", now=0.5)
    for n in range(20):
        limiter.allow(f"idle-{n}", now=1 + n)
    assert not limiter.allow("busy", now=30)  # still inside its minute: still limited
