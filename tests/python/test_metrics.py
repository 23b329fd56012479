"""``GET /metrics`` read by Prometheus' own text-format parser (``prometheus_client.parser``),
while the official client writes documents and a Raven ETL task copies them to a second
database; ``/setup/alive`` and ``/health/ready`` answered as load balancers expect.

The parser is strict: a line it cannot read raises, so parsing the page is the format check.
docs/metrics.md lists every metric.
"""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

# The ETL fixtures and helpers of the ETL suite.
from test_etl import (  # noqa: F401  (``etl`` is a fixture)
    PEOPLE_SCRIPT,
    add_connection_string_and_task,
    etl,
    raven_etl,
    store_users,
    wait_for,
)


def scrape(url: str):
    answer = requests.get(f"{url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return list(text_string_to_metric_families(answer.text))


def value(families, sample_name: str, **labels) -> float | None:
    """The value of the one sample named ``sample_name`` with these labels (among others)."""
    found = [
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == sample_name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) <= 1, (sample_name, labels, found)
    return found[0] if found else None


def test_page_is_prometheus_text_and_moves_with_writes_and_etl(etl):
    env = etl
    families = scrape(env.url)
    types = {family.name: family.type for family in families}
    # Counters end in `_total`, durations in `_seconds`, sizes in `_bytes`.
    assert types["corvid_database_writes"] == "counter"
    assert types["corvid_etl_loaded_items"] == "counter"
    assert types["corvid_etl_batch_duration_seconds"] == "histogram"
    assert types["corvid_http_request_duration_seconds"] == "histogram"
    assert types["process_resident_memory_bytes"] == "gauge"
    assert value(families, "corvid_database_documents", database=env.src_name) == 0
    assert value(families, "process_resident_memory_bytes") > 1e6

    add_connection_string_and_task(env, raven_etl("metrics-etl", PEOPLE_SCRIPT))
    store_users(env.src, {f"users/{idx}": f"user{idx}" for idx in range(20)})
    task = {"database": env.src_name, "task": "metrics-etl", "transformation": "script1", "destination_type": "Raven"}

    def loaded():
        families = scrape(env.url)
        done = (
            value(families, "corvid_etl_loaded_items_total", **task) == 20
            and value(families, "corvid_etl_lag_items", **task) == 0
            and value(families, "corvid_database_documents", database=env.dst_name) == 20
        )
        return families if done else None

    families = wait_for("the ETL metrics to show 20 documents loaded", loaded)
    assert value(families, "corvid_etl_extracted_items_total", **task) == 20
    assert value(families, "corvid_etl_transformation_errors_total", **task) == 0
    assert value(families, "corvid_etl_state", state="Active", **task) == 1
    assert value(families, "corvid_etl_batch_duration_seconds_count", phase="load", **task) >= 1
    assert value(families, "corvid_database_documents", database=env.src_name) == 20
    assert value(families, "corvid_database_writes_total", database=env.src_name) >= 20
    # The session's save_changes is one bulk_docs request, labelled by its route template.
    assert (
        value(
            families,
            "corvid_http_request_duration_seconds_count",
            database=env.src_name,
            method="POST",
            route="/databases/{db}/bulk_docs",
            status="2xx",
        )
        == 1
    )


def test_alive_and_ready(server_url):
    alive = requests.get(f"{server_url}/setup/alive", timeout=10)
    assert alive.status_code == 204
    ready = requests.get(f"{server_url}/health/ready", timeout=10)
    assert ready.status_code == 200
