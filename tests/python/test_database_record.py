"""The database record, statistics, the "ensure the database exists" start-up pattern, and the
clean error of unsupported features, with the official Python client (ravendb==7.2.7)."""

from __future__ import annotations

import re

import pytest
from ravendb import DocumentStore, GetDatabaseRecordOperation
from ravendb.documents.indexes.definitions import IndexDefinition
from ravendb.documents.operations.compare_exchange.operations import GetCompareExchangeValueOperation
from ravendb.documents.operations.counters import GetCountersOperation
from ravendb.documents.operations.indexes import PutIndexesOperation
from ravendb.documents.operations.statistics import GetStatisticsOperation
from ravendb.documents.operations.time_series import GetTimeSeriesOperation
from ravendb.documents.subscriptions.options import SubscriptionCreationOptions
from ravendb.exceptions.exceptions import DatabaseDoesNotExistException
from ravendb.exceptions.raven_exceptions import RavenException

from conftest import create_database, delete_database_quietly, unique_db_name


def test_record_of_a_database(admin_store, database):
    record = admin_store.maintenance.server.send(GetDatabaseRecordOperation(database))
    assert record is not None
    assert record.database_name == database
    assert record.disabled is False
    assert record.topology["Members"] == ["A"]
    assert record.settings == {}
    # The client requires `Etag` and keeps it in a private attribute.
    assert isinstance(record._DatabaseRecordWithEtag__etag, int)
    assert record.raven_etls == [] and record.sql_etls == []


def test_record_of_a_missing_database_is_none(admin_store):
    assert admin_store.maintenance.server.send(GetDatabaseRecordOperation(unique_db_name("absent"))) is None


def test_statistics_are_complete(store):
    empty = store.maintenance.send(GetStatisticsOperation())
    assert empty.count_of_documents == 0
    assert empty.last_doc_etag == 0
    assert empty.database_change_vector == ""

    with store.open_session() as session:
        for idx in range(20):
            session.store({"Text": "x" * 2000}, f"notes/{idx}")
        session.save_changes()

    stats = store.maintenance.send(GetStatisticsOperation())
    assert stats.count_of_documents == 20
    assert stats.count_of_indexes == 0
    assert stats.indexes == []
    assert stats.last_doc_etag >= 20
    assert stats.last_database_etag == stats.last_doc_etag
    assert stats.database_change_vector.startswith(f"A:{stats.last_doc_etag}-")
    assert isinstance(stats.database_id, str) and stats.database_id
    assert stats.is_64_bit is True
    assert stats.size_on_disk.size_in_bytes > empty.size_on_disk.size_in_bytes >= 0
    assert stats.size_on_disk.size_in_bytes >= 20 * 2000
    assert re.fullmatch(r"\d+(\.\d{1,2})? (Bytes|KBytes|MBytes|GBytes)", stats.size_on_disk.human_size)
    assert stats.temp_buffers_size_on_disk.size_in_bytes == 0


def test_statistics_of_a_missing_database_raise(server_url):
    name = unique_db_name("absent")
    store = DocumentStore(urls=[server_url], database=name)
    store.initialize()
    try:
        with pytest.raises(DatabaseDoesNotExistException):
            store.maintenance.send(GetStatisticsOperation())
    finally:
        store.close()


def start_application(url: str, name: str, pattern: str, number: int) -> list:
    """What an application does at start-up: make sure its database exists (with the record, or
    with statistics and DatabaseDoesNotExistException), then use it. Returns the numbers of the
    "starts" documents found after writing its own."""
    store = DocumentStore(urls=[url], database=name)
    store.initialize()
    try:
        if pattern == "record":
            if store.maintenance.server.send(GetDatabaseRecordOperation(name)) is None:
                create_database(store, name)
        else:
            try:
                store.maintenance.send(GetStatisticsOperation())
            except DatabaseDoesNotExistException:
                create_database(store, name)
        with store.open_session() as session:
            session.store({"Number": number}, f"starts/{number}")
            session.save_changes()
        with store.open_session() as session:
            return sorted(doc["Number"] for doc in session.advanced.load_starting_with("starts/", dict))
    finally:
        store.close()


@pytest.mark.parametrize("pattern", ["record", "statistics"])
def test_an_application_started_twice(admin_store, server_url, pattern):
    name = unique_db_name(f"ensure_{pattern}")
    try:
        assert start_application(server_url, name, pattern, 1) == [1]
        assert start_application(server_url, name, pattern, 2) == [1, 2]
    finally:
        delete_database_quietly(admin_store, name)
    assert admin_store.maintenance.server.send(GetDatabaseRecordOperation(name)) is None


def assert_not_supported(feature: str, call) -> None:
    with pytest.raises(RavenException) as raised:
        call()
    message = str(raised.value)
    assert f"Corvid does not support {feature}" in message, message
    assert "status code: 501" in message, message


def test_unsupported_features_raise_an_error_naming_them(store):
    with store.open_session() as session:
        session.store({"Name": "Alice"}, "users/1")
        session.save_changes()

    index = IndexDefinition(name="Users/ByName", maps={"from u in docs.Users select new { u.Name }"})
    assert_not_supported("static indexes", lambda: store.maintenance.send(PutIndexesOperation(index)))
    assert_not_supported("counters", lambda: store.operations.send(GetCountersOperation("users/1", "likes")))
    assert_not_supported(
        "time series", lambda: store.operations.send(GetTimeSeriesOperation("users/1", "HeartRate"))
    )

    def revisions():
        with store.open_session() as session:
            session.advanced.revisions.get_for("users/1", dict)

    assert_not_supported("revisions", revisions)
    assert_not_supported(
        "subscriptions", lambda: store.subscriptions.create_for_options(SubscriptionCreationOptions(query="from Users"))
    )
    assert_not_supported(
        "compare exchange", lambda: store.operations.send(GetCompareExchangeValueOperation("emails/alice", dict))
    )


