"""Raven ETL with a document the destination will never accept, through the official Python
client (ravendb==7.2.7): the document is left out, every other document arrives, and the task
stays Active (issue 14, "Poison items must not stall a task"; docs/etl.md, *Load errors and
refused items*)."""

from __future__ import annotations

from ravendb import OngoingTaskConnectionStatus

from test_etl import (  # noqa: F401 (the `etl` fixture)
    PEOPLE_SCRIPT,
    add_connection_string_and_task,
    etl,
    people_by_source,
    raven_etl,
    store_users,
    task_info,
    wait_for,
)


def test_a_refused_document_is_left_out_and_later_ones_arrive(etl):
    # 510 bytes at the source; with `/people/` added the destination refuses the id.
    long_id = "users/" + "9" * 504
    store_users(etl.src, {"users/1": "A", long_id: "Long", "users/3": "C"})
    task_id = add_connection_string_and_task(etl, raven_etl("poison", PEOPLE_SCRIPT))
    wait_for("users/1 and users/3 as people", lambda: set(people_by_source(etl.dst)) == {1, 3})
    store_users(etl.src, {"users/4": "D"})
    arrived = wait_for("users/4 as people", lambda: 4 in people_by_source(etl.dst) and people_by_source(etl.dst))
    assert set(arrived) == {1, 3, 4}
    assert task_info(etl, task_id).task_connection_status == OngoingTaskConnectionStatus.ACTIVE
