"""The rate limiter (a sliding minute per client, shared by processes), and CORS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flask.testing import FlaskClient

from server.ratelimit import RateLimiter
from tests.conftest import REPO, MakeSettings


def test_a_client_gets_its_limit_per_sliding_minute(tmp_path: Path) -> None:
    limiter = RateLimiter(3, tmp_path / "limits.sqlite")
    assert [limiter.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("b", now=3)  # another client has its own window
    assert not limiter.allow("a", now=59.9)
    assert limiter.retry_after("a", now=59.9) == 1
    assert limiter.allow("a", now=60.0)  # the first request has left the window


def test_zero_disables_the_limit(tmp_path: Path) -> None:
    limiter = RateLimiter(0, tmp_path / "limits.sqlite")
    assert all(limiter.allow("a", now=0) for _ in range(1000))


def test_only_the_last_minute_is_kept_so_the_table_stays_bounded(tmp_path: Path) -> None:
    limiter = RateLimiter(5, tmp_path / "limits.sqlite")
    for n in range(2000):  # a new address every second, each calling once
        limiter.allow(f"10.0.{n // 256}.{n % 256}", now=float(n))
    assert len(limiter) == 60  # only the last minute's clients


COUNTER = """
import sys
from pathlib import Path
from server.ratelimit import RateLimiter
limiter = RateLimiter(10, Path(sys.argv[1]))
sys.stdout.write(str(sum(limiter.allow("key:shared") for _ in range(8))))
"""


def test_processes_sharing_a_home_share_one_count(tmp_path: Path) -> None:
    """What gunicorn workers do: each process counts in the same file."""
    database = tmp_path / "limits.sqlite"
    script = [sys.executable, "-c", COUNTER, str(database)]
    running = [subprocess.Popen(script, cwd=REPO, stdout=subprocess.PIPE, text=True)
               for _ in range(3)]  # fmt: skip
    allowed = [int(process.communicate(timeout=60)[0]) for process in running]
    assert sum(allowed) == 10  # 24 asked, one limit of 10 between them


def test_cors_is_off_by_default_and_on_for_the_named_origins(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    from server.app import create_app
    from server.wiring import Services
    from tests.fakes import FakeEmbedder, FakeGenerator

    def client(**server: object) -> FlaskClient:
        settings = make_settings(home=tmp_path / str(len(server)), server=server)
        services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
        return create_app(settings, services).test_client()

    site = {"Origin": "https://intranet.example.com"}
    closed = client().get("/api/collections", headers=site)
    assert "Access-Control-Allow-Origin" not in closed.headers
    opened = client(cors_origins=["https://intranet.example.com"], api_key="k3y")
    # A preflight needs no key; the browser then sends it.
    preflight = opened.options("/api/chat", headers={
        **site, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})  # fmt: skip
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://intranet.example.com"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    listed = opened.get("/api/collections", headers={**site, "Authorization": "Bearer k3y"})
    assert listed.status_code == 200
    assert listed.headers["Access-Control-Allow-Origin"] == "https://intranet.example.com"
    assert "X-Request-Id" in listed.headers["Access-Control-Expose-Headers"]
    other = opened.get("/api/collections", headers={"Origin": "https://evil.example",
                                                    "Authorization": "Bearer k3y"})  # fmt: skip
    assert "Access-Control-Allow-Origin" not in other.headers
    assert opened.get("/api/collections", headers=site).status_code == 401  # still needs a key


def test_behind_a_named_proxy_limits_count_the_real_client(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    from server.app import create_app
    from server.wiring import Services
    from tests.fakes import FakeEmbedder, FakeGenerator

    def codes(proxies: int) -> list[int]:
        server = {"rate_limit_per_minute": 2, "trusted_proxies": proxies}
        settings = make_settings(home=tmp_path / str(proxies), server=server)
        services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
        client = create_app(settings, services).test_client()
        return [client.get("/api/collections",
                           headers={"X-Forwarded-For": f"10.0.0.{n}"}).status_code
                for n in (1, 1, 1, 2, 3)]  # fmt: skip

    assert codes(1) == [200, 200, 429, 200, 200]  # each client its own budget
    assert codes(0) == [200, 200, 429, 429, 429]  # untrusted headers: one address


def test_each_key_has_its_own_budget_and_guessing_keys_spends_the_addresss(
    tmp_path: Path, make_settings: MakeSettings
) -> None:
    from server.app import create_app
    from server.wiring import Services
    from tests.fakes import FakeEmbedder, FakeGenerator

    settings = make_settings(home=tmp_path, server={"rate_limit_per_minute": 2})
    services = Services(settings, embedder=FakeEmbedder(), generator=FakeGenerator())
    secrets = [services.keys.create(name=n, role="reader")[1] for n in ("a", "b")]
    client = create_app(settings, services).test_client()

    def call(secret: str) -> int:
        return client.get(
            "/api/collections", headers={"Authorization": f"Bearer {secret}"}
        ).status_code

    assert [call(secrets[0]) for _ in range(3)] == [200, 200, 429]
    assert [call(secrets[1]) for _ in range(2)] == [200, 200]  # one key's burst spares another
    guesses = [call(f"rqk_{n:012x}_guess") for n in range(3)]
    assert guesses == [401, 401, 429]  # wrong keys share the address's budget
    limited = client.get("/api/collections", headers={"Authorization": f"Bearer {secrets[0]}"})
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert "from this key" in limited.get_json()["error"]["message"]
