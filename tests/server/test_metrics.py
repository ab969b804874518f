"""``GET /metrics`` of a real ``flowml server`` process, parsed with prometheus_client's own parser:
request counters by route template, latency histograms, the registry outbox backlog and delivery
attempts recorded by a real dispatcher, the connection pool, ``--workers 2`` adding up, and who may
scrape when ``--auth`` is on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowml.client import FlowmlClient
from flowml.client.local import SqlBackend
from flowml.entities_registry import RegistryEvent
from flowml.registry.dispatch import Dispatcher, SubscriberTarget
from flowml.server.metrics import ServerMetrics
from tests.fixtures.server import flowml_server_popen, serve_in_thread

API = "/api/2.0/mlflow"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **kwargs: object) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=30, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests_total(samples: Samples, route: str, status: str, method: str = "GET") -> float:
    return value(samples, "flowml_http_requests_total", method=method, route=route, status=status)


@pytest.fixture
def server(store_uri: str, tmp_path: Path) -> Iterator[str]:
    with flowml_server_popen(store_uri, str(tmp_path / "artifacts"), log=tmp_path / "server.log") as (url, _):
        yield url


def test_requests_are_counted_by_route_template_status_and_method(server: str) -> None:
    for _ in range(3):
        assert httpx.get(f"{server}{API}/experiments/get", params={"experiment_id": "0"}).status_code == 200
    assert httpx.get(f"{server}{API}/experiments/get", params={"experiment_id": "12345"}).status_code == 404
    assert httpx.get(f"{server}/ajax-api/2.0/mlflow/experiments/get?experiment_id=0").status_code == 200
    assert httpx.get(f"{server}/no/such/path/7f3a").status_code == 404
    for name in ("a.txt", "b.txt"):
        put = httpx.put(f"{server}/api/2.0/mlflow-artifacts/artifacts/0/run/{name}", content=b"x")
        assert put.status_code == 200
    # log-batch is answered outside FastAPI's routing (server/fast_lane.py): counted all the same
    created = httpx.post(f"{server}{API}/runs/create", json={"experiment_id": "0"}).json()
    run_id = created["run"]["info"]["run_id"]
    point = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    logged = httpx.post(f"{server}{API}/runs/log-batch", json={"run_id": run_id, "metrics": [point]})
    assert logged.status_code == 200 and len(logged.headers["x-request-id"]) == 32
    unknown = {"run_id": "f" * 32, "metrics": [point]}
    assert httpx.post(f"{server}/ajax-api/2.0/mlflow/runs/log-batch", json=unknown).status_code == 404

    samples = scrape(server)

    assert requests_total(samples, f"{API}/experiments/get", "200") == 3
    assert requests_total(samples, f"{API}/experiments/get", "404") == 1
    assert requests_total(samples, "/ajax-api/2.0/mlflow/experiments/get", "200") == 1
    assert requests_total(samples, "<unmatched>", "404") == 1
    assert requests_total(samples, f"{API}/runs/log-batch", "200", method="POST") == 1
    assert requests_total(samples, "/ajax-api/2.0/mlflow/runs/log-batch", "404", method="POST") == 1
    artifact_route = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path}"
    assert requests_total(samples, artifact_route, "200", method="PUT") == 2
    histogram = {"method": "GET", "route": f"{API}/experiments/get"}
    assert value(samples, "flowml_http_request_duration_seconds_count", **histogram) == 4
    assert value(samples, "flowml_http_request_duration_seconds_bucket", le="+Inf", **histogram) == 4
    assert value(samples, "flowml_http_request_duration_seconds_sum", **histogram) > 0
    # bounded cardinality: no label carries a raw path, an id or a file name
    routes = {dict(labels).get("route", "") for _, labels in samples}
    assert not any(part in route for route in routes for part in ("12345", "7f3a", "a.txt", "/run/"))
    # the scrape's own request shows on the next one
    assert requests_total(scrape(server), "/metrics", "200") == 1
    assert value(samples, "flowml_store_up") == 1
    assert value(samples, "flowml_db_pool_size") == 5
    assert value(samples, "flowml_db_pool_checked_out") == 0
    assert value(samples, "flowml_db_pool_checked_in") >= 1
    assert value(samples, "process_resident_memory_bytes") > 0


def _versions(client: FlowmlClient, name: str, n: int) -> None:
    client.create_registered_model(name)
    root = client.get_experiment("0").artifact_location
    for i in range(n):
        client.create_model_version(name, f"{root}/m{i}")


def test_outbox_backlog_and_delivery_failures_follow_the_store(server: str) -> None:
    client = FlowmlClient(server)
    _versions(client, "flaky", 2)
    _versions(client, "fine", 1)
    client.transition_model_version_stage("flaky", "1", "Staging")
    undelivered = client.backend.list_registry_events(None, None, 1000, True)
    assert len(undelivered) == 4  # three versions created, one stage change

    before = scrape(server)
    assert value(before, "flowml_registry_outbox_pending_events") == len(undelivered)
    assert value(before, "flowml_registry_outbox_failing_events") == 0
    assert value(before, "flowml_registry_event_delivery_attempts_total", outcome="failure") == 0
    assert value(before, "flowml_registry_outbox_oldest_pending_age_seconds") >= 0

    def deliver(event: RegistryEvent) -> None:
        if event.name == "flaky":
            raise RuntimeError("webhook down")

    # a real dispatcher over the REST API: delivers "fine", fails flaky's first event (its later
    # events wait behind it), and records both attempts in the store
    Dispatcher(client.backend, [SubscriberTarget(deliver)], base_backoff_s=60).run_once()

    after = scrape(server)
    assert value(after, "flowml_registry_outbox_pending_events") == 3
    assert len(client.backend.list_registry_events(None, None, 1000, True)) == 3
    assert value(after, "flowml_registry_outbox_failing_events") == 1
    assert value(after, "flowml_registry_event_delivery_attempts_total", outcome="failure") == 1
    assert value(after, "flowml_registry_event_delivery_attempts_total", outcome="success") == 1


def test_workers_add_up_into_one_view(tmp_path: Path) -> None:
    """``--workers 2``: whichever worker answers the scrape reports every worker's requests."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with flowml_server_popen(
        f"sqlite:///{tmp_path / 'w.db'}",
        str(tmp_path / "artifacts"),
        "--workers",
        "2",
        env={"TMPDIR": str(tmp)},
        log=tmp_path / "server.log",
    ) as (url, proc):
        # A new connection per request until both workers have served some (each writes its own
        # counter file on its first request); the workers share one listening socket.
        sent = 0
        while len(list(tmp.glob("flowml-metrics-*/counter_*.db"))) < 2:
            assert sent < 300, "the second worker never got a request"
            assert httpx.get(f"{url}{API}/experiments/get", params={"experiment_id": "0"}).status_code == 200
            sent += 1
        for _ in range(6):  # each scrape may be answered by either worker: all report the sum
            assert requests_total(scrape(url), f"{API}/experiments/get", "200") == sent
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    assert list(tmp.glob("flowml-metrics-*")) == []  # removed at exit


def test_auth_metrics_are_for_admins_unless_public(tmp_path: Path) -> None:
    admin = ("admin", "admin-password")
    settings = {"auth": True, "auth_admin_username": admin[0], "auth_admin_password": admin[1]}
    with serve_in_thread(f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "art"), **settings) as url:
        assert httpx.get(f"{url}/metrics").status_code == 401
        created = httpx.post(
            f"{url}{API}/users/create", json={"username": "bob", "password": "bob-password"}, auth=admin
        )
        assert created.status_code == 200
        denied = httpx.get(f"{url}/metrics", auth=("bob", "bob-password"))
        assert (denied.status_code, denied.json()["error_code"]) == (403, "PERMISSION_DENIED")
        issued = httpx.post(f"{url}{API}/users/tokens", json={"name": "prometheus"}, auth=admin)
        token = issued.json()["token"]
        samples = scrape(url, headers={"Authorization": f"Bearer {token}"})  # how Prometheus scrapes
        assert value(samples, "flowml_store_up") == 1
    public = {**settings, "metrics_public": True}
    with serve_in_thread(f"sqlite:///{tmp_path / 'b.db'}", str(tmp_path / "art2"), **public) as url:
        assert value(scrape(url), "flowml_store_up") == 1
        assert httpx.get(f"{url}{API}/experiments/get?experiment_id=0").status_code == 401  # only /metrics


def test_an_unreachable_store_is_reported_not_raised() -> None:
    backend = SqlBackend("postgresql://nobody@127.0.0.1:1/none", "/tmp/unused")
    metrics = ServerMetrics(backend)  # no I/O until the scrape
    start = time.monotonic()
    body, content_type = metrics.render(None)
    assert time.monotonic() - start < 10
    assert content_type.startswith("text/plain")
    samples = {
        s.name: s.value for family in text_string_to_metric_families(body.decode()) for s in family.samples
    }
    assert samples["flowml_store_up"] == 0
    assert "flowml_registry_outbox_pending_events" not in samples
