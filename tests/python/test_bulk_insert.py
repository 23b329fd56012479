"""Bulk insert with the official Python client: ``store.bulk_insert()`` against CORVID_URL.

The client takes an operation id (``GET /operations/next-operation-id``), streams every stored
entity in one ``POST /bulk_insert?id=`` request and, when that request fails, reads the
operation's state (``GET /operations/state?id=``) for the server's error.
"""

from __future__ import annotations

import pytest
from ravendb.documents.bulk_insert_operation import BulkInsertOptions
from ravendb.documents.operations.statistics import GetCollectionStatisticsOperation
from ravendb.exceptions.documents.bulkinsert import BulkInsertAbortedException
from ravendb.json.metadata_as_dictionary import MetadataAsDictionary


class Person:
    def __init__(self, name: str = None, age: int = None, tags: list = None):
        self.name = name
        self.age = age
        self.tags = tags


def _count(store, collection: str) -> int:
    stats = store.maintenance.send(GetCollectionStatisticsOperation())
    return stats.collections.get(collection, 0)


def test_bulk_insert_of_100000_documents_is_counted_and_loadable(store):
    n_docs = 100_000
    with store.bulk_insert() as bulk_insert:
        for idx in range(n_docs):
            bulk_insert.store_as(Person(f"person {idx}", idx % 90, ["a", "b"]), f"people/{idx}")

    assert _count(store, "People") == n_docs
    with store.open_session() as session:
        for idx in (0, 1, 49_999, 99_999):
            person = session.load(f"people/{idx}", Person)
            assert person is not None, f"people/{idx} missing"
            assert person.name == f"person {idx}"
            assert person.age == idx % 90
            assert person.tags == ["a", "b"]


def test_bulk_insert_keeps_metadata_and_the_collection_it_is_given(store):
    with store.bulk_insert() as bulk_insert:
        metadata = MetadataAsDictionary()
        metadata["@collection"] = "Employees"
        metadata["Department"] = "Sales"
        key = bulk_insert.store(Person("Ann", 41), metadata)
        bulk_insert.store_as(Person("Bob", 30), "people/bob")
        # Generated ids come from HiLo, as in a session.
        generated = bulk_insert.store(Person("Cid", 25))

    # The client names generated ids after the entity's type, whatever the collection.
    assert key.startswith("people/"), key
    assert generated.startswith("people/") and generated != key, generated
    with store.open_session() as session:
        ann = session.load(key, Person)
        assert ann.name == "Ann"
        ann_metadata = session.advanced.get_metadata_for(ann)
        assert ann_metadata["@collection"] == "Employees"
        assert ann_metadata["Department"] == "Sales"
        assert ann_metadata["Raven-Python-Type"].endswith("Person")
        bob = session.load("people/bob", Person)
        assert session.advanced.get_metadata_for(bob)["@collection"] == "People"
        assert session.load(generated, Person).name == "Cid"
    assert _count(store, "Employees") == 1


def test_bulk_insert_with_compression_and_attachments(store):
    options = BulkInsertOptions(use_compression=True)
    with store.bulk_insert(options=options) as bulk_insert:
        for idx in range(2_000):
            bulk_insert.store_as(Person(f"zipped {idx}", idx), f"zipped/{idx}")
        bulk_insert.attachments_for("zipped/7").store("note.txt", b"seven ] , [", "text/plain")

    assert _count(store, "People") == 2_000
    with store.open_session() as session:
        assert session.load("zipped/1999", Person).name == "zipped 1999"
        attachment = session.advanced.attachments.get("zipped/7", "note.txt")
        assert attachment.data == b"seven ] , ["
        assert attachment.details.content_type == "text/plain"


def test_a_failing_bulk_insert_raises_and_keeps_what_was_written_before(store):
    with store.open_session() as session:
        session.store(Person("already"), "people/taken")
        session.save_changes()

    metadata = MetadataAsDictionary()
    metadata["@collection"] = "Robots"  # a document cannot change collection
    with pytest.raises(Exception) as raised:
        with store.bulk_insert() as bulk_insert:
            bulk_insert.store_as(Person("first"), "people/first")
            bulk_insert.store_as(Person("clash"), "people/taken", metadata)
    # The client wraps the request's failure; the server's message travels as its cause.
    assert isinstance(raised.value, BulkInsertAbortedException), repr(raised.value)
    assert "people/taken" in str(raised.value.cause), repr(raised.value.cause)
    with store.open_session() as session:
        assert session.load("people/taken", Person).name == "already"
