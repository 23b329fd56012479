"""Compatibility tests: the official RavenDB Python client (ravendb==7.2.7) against CORVID_URL.

Each test runs on its own freshly created database (see conftest.py). The assertions check real
values coming back from the server, not merely that no exception was raised.
"""

from __future__ import annotations

import re

import pytest
from ravendb import DocumentStore
from ravendb.exceptions.exceptions import DatabaseDoesNotExistException
from ravendb.exceptions.raven_exceptions import ConcurrencyException, RavenException

from conftest import (
    RAVENDB41_REFERENCE,
    create_database,
    delete_database,
    delete_database_quietly,
    unique_db_name,
)


class User:
    def __init__(self, name: str = None, age: int = None):
        self.name = name
        self.age = age


class Company:
    def __init__(self, name: str = None, city: str = None):
        self.name = name
        self.city = city


HILO_ID = re.compile(r"^users/(\d+)-([A-Za-z0-9]+)$")


def _create_checked(admin_store, name):
    """CreateDatabaseOperation, with the result checked."""
    if RAVENDB41_REFERENCE:
        # 4.1 sends a Topology without PriorityOrder; 7.2.7 parses it strictly (after the create).
        with pytest.raises(KeyError, match="PriorityOrder"):
            create_database(admin_store, name)
        return
    result = create_database(admin_store, name)
    assert result.name == name
    assert isinstance(result.raft_command_index, int)


def _load_expecting_missing_database(server_url, name):
    """Open a session on database `name` and load a document; the database must not exist."""
    expected = RavenException if RAVENDB41_REFERENCE else DatabaseDoesNotExistException
    with DocumentStore(urls=[server_url], database=name) as store:
        store.initialize()
        with pytest.raises(expected) as exc_info:
            with store.open_session() as s:
                s.load("users/1", User)
    assert name in str(exc_info.value)
    if RAVENDB41_REFERENCE:
        # 4.1 answers 500 {"Type":"...DatabaseDoesNotExistException"} without a Database-Missing
        # header; the client does not map that type and raises a plain RavenException.
        assert "DatabaseDoesNotExistException" in str(exc_info.value)


def _seed_users(store, users):
    """users: {id: (name, age)}"""
    with store.open_session() as s:
        for doc_id, (name, age) in users.items():
            s.store(User(name, age), doc_id)
        s.save_changes()


# ----------------------------------------------------------------------------------------------
# Databases
# ----------------------------------------------------------------------------------------------


def test_create_and_delete_database(admin_store, server_url):
    name = unique_db_name("create_delete")
    created = True  # pessimistic: a create that fails while parsing the answer may still have happened
    try:
        _create_checked(admin_store, name)

        # Creating the same name again must fail with 409 -> ConcurrencyException.
        with pytest.raises(ConcurrencyException):
            create_database(admin_store, name)

        # The new database is usable.
        with DocumentStore(urls=[server_url], database=name) as store:
            store.initialize()
            with store.open_session() as s:
                s.store(User("Ann", 30), "users/1")
                s.save_changes()
            with store.open_session() as s:
                assert s.load("users/1", User).name == "Ann"

        deleted = delete_database(admin_store, name)
        created = False
        assert isinstance(deleted.raft_command_index, int)
        assert isinstance(deleted.pending_deletes, list)

        # The database is gone: a fresh store that uses it gets DatabaseDoesNotExistException.
        _load_expecting_missing_database(server_url, name)

        # And the name can be created again (really gone, not just hidden), starting empty.
        created = True
        _create_checked(admin_store, name)
        with DocumentStore(urls=[server_url], database=name) as store:
            store.initialize()
            with store.open_session() as s:
                assert s.load("users/1", User) is None, "re-created database must start empty"
    finally:
        if created:
            delete_database_quietly(admin_store, name)


def test_missing_database_raises(server_url):
    _load_expecting_missing_database(server_url, unique_db_name("does_not_exist"))


# ----------------------------------------------------------------------------------------------
# Session CRUD
# ----------------------------------------------------------------------------------------------


def test_store_and_load_roundtrip(store):
    with store.open_session() as s:
        s.store(User("Ann", 30), "users/1")
        s.store(Company("Acme", "Oslo"), "companies/1")
        s.save_changes()

    with store.open_session() as s:
        ann = s.load("users/1", User)
        assert isinstance(ann, User)
        assert ann.name == "Ann"
        assert ann.age == 30

        md = s.advanced.get_metadata_for(ann)
        assert md["@collection"] == "Users"
        assert md["@id"] == "users/1"
        assert md["@change-vector"]  # non-empty
        assert s.advanced.get_document_id(ann) == "users/1"
        assert s.advanced.get_change_vector_for(ann) == md["@change-vector"]

        acme = s.load("companies/1", Company)
        assert isinstance(acme, Company)
        assert (acme.name, acme.city) == ("Acme", "Oslo")
        assert s.advanced.get_metadata_for(acme)["@collection"] == "Companies"

    # An update through a session is persisted and changes the change vector.
    with store.open_session() as s:
        ann = s.load("users/1", User)
        old_cv = s.advanced.get_change_vector_for(ann)
        ann.age = 31
        s.save_changes()
        assert s.advanced.get_change_vector_for(ann) != old_cv

    with store.open_session() as s:
        ann = s.load("users/1", User)
        assert ann.age == 31
        assert ann.name == "Ann"
        assert s.advanced.get_change_vector_for(ann) != old_cv


def test_load_many_with_missing(store):
    _seed_users(store, {"users/1": ("Ann", 30), "users/2": ("Bob", 40), "users/3": ("Carl", 50)})

    with store.open_session() as s:
        result = s.load(["users/1", "users/3", "users/404"], User)
        assert isinstance(result, dict)
        assert set(result.keys()) == {"users/1", "users/3", "users/404"}
        assert result["users/404"] is None
        assert result["users/1"].name == "Ann"
        assert result["users/3"].name == "Carl"
        assert result["users/3"].age == 50

    # Single missing id: None.
    with store.open_session() as s:
        assert s.load("users/404", User) is None


def test_delete_document(store):
    _seed_users(store, {"users/1": ("Ann", 30), "users/2": ("Bob", 40)})

    with store.open_session() as s:
        s.delete("users/1")
        s.save_changes()

    with store.open_session() as s:
        assert s.load("users/1", User) is None
        assert s.load("users/2", User).name == "Bob"  # the other document is untouched

    # Delete of a loaded entity.
    with store.open_session() as s:
        bob = s.load("users/2", User)
        s.delete(bob)
        s.save_changes()

    with store.open_session() as s:
        result = s.load(["users/1", "users/2"], User)
        assert result == {"users/1": None, "users/2": None}


def test_ids_case_insensitive_but_preserving(store):
    with store.open_session() as s:
        s.store(User("Abe", 20), "Users/ABC")
        s.save_changes()

    with store.open_session() as s:
        abe = s.load("users/abc", User)
        assert abe is not None
        assert abe.name == "Abe"
        # The id keeps the case it was stored with.
        assert s.advanced.get_document_id(abe) == "Users/ABC"
        assert s.advanced.get_metadata_for(abe)["@id"] == "Users/ABC"

    with store.open_session() as s:
        abe = s.load("USERS/aBc", User)
        assert abe is not None and abe.name == "Abe"
        assert s.advanced.exists("users/ABC") is True

    # Storing under a differently-cased id updates the same document (no second document).
    with store.open_session() as s:
        s.store(User("Abe2", 21), "users/abc")
        s.save_changes()
    with store.open_session() as s:
        assert s.query(object_type=User).count() == 1
        abe = s.load("Users/ABC", User)
        assert (abe.name, abe.age) == ("Abe2", 21)


def test_exists(store):
    _seed_users(store, {"users/1": ("Ann", 30)})
    with store.open_session() as s:
        assert s.advanced.exists("users/1") is True
        assert s.advanced.exists("users/404") is False


# ----------------------------------------------------------------------------------------------
# Optimistic concurrency
# ----------------------------------------------------------------------------------------------


def test_optimistic_concurrency_conflict(store):
    _seed_users(store, {"users/1": ("Ann", 30)})

    s1 = store.open_session()
    s2 = store.open_session()
    try:
        u1 = s1.load("users/1", User)
        u2 = s2.load("users/1", User)
        assert s1.advanced.get_change_vector_for(u1) == s2.advanced.get_change_vector_for(u2)

        u1.age = 31
        u2.age = 99
        s2.advanced.use_optimistic_concurrency = True

        s1.save_changes()
        with pytest.raises(ConcurrencyException):
            s2.save_changes()
    finally:
        s1.close()
        s2.close()

    # The losing write did not land.
    with store.open_session() as s:
        assert s.load("users/1", User).age == 31

    # With the fresh change vector the write succeeds.
    with store.open_session() as s:
        s.advanced.use_optimistic_concurrency = True
        u = s.load("users/1", User)
        u.age = 32
        s.save_changes()
    with store.open_session() as s:
        assert s.load("users/1", User).age == 32


def test_optimistic_concurrency_new_document_over_existing_id(store):
    _seed_users(store, {"users/1": ("Ann", 30)})

    # A brand-new entity stored under an existing id with optimistic concurrency enabled is
    # sent with ChangeVector "" (= "must not exist") and must be rejected.
    with store.open_session() as s:
        s.advanced.use_optimistic_concurrency = True
        s.store(User("Impostor", 1), "users/1")
        with pytest.raises(ConcurrencyException):
            s.save_changes()

    with store.open_session() as s:
        ann = s.load("users/1", User)
        assert (ann.name, ann.age) == ("Ann", 30)

    # The same thing for an id that does not exist yet succeeds.
    with store.open_session() as s:
        s.advanced.use_optimistic_concurrency = True
        s.store(User("Newbie", 2), "users/2")
        s.save_changes()
    with store.open_session() as s:
        assert s.load("users/2", User).name == "Newbie"


def test_batch_is_atomic_on_concurrency_failure(store):
    _seed_users(store, {"users/1": ("Ann", 30)})

    with store.open_session() as s:
        s.advanced.use_optimistic_concurrency = True
        s.store(User("Fresh", 5), "users/fresh")  # would succeed on its own
        s.store(User("Impostor", 1), "users/1")  # conflicts
        with pytest.raises(ConcurrencyException):
            s.save_changes()

    with store.open_session() as s:
        assert s.load("users/fresh", User) is None, "a failed batch must not be partially applied"
        assert s.load("users/1", User).name == "Ann"


# ----------------------------------------------------------------------------------------------
# HiLo id generation
# ----------------------------------------------------------------------------------------------


def test_hilo_ids(store, store_factory):
    users = [User(f"u{i}", i) for i in range(5)]
    with store.open_session() as s:
        for u in users:
            s.store(u)
        ids_1 = [s.advanced.get_document_id(u) for u in users]
        s.save_changes()

    with store.open_session() as s:
        more = [User(f"v{i}", i) for i in range(3)]
        for u in more:
            s.store(u)
        ids_2 = [s.advanced.get_document_id(u) for u in more]
        s.save_changes()

    # A second, independent DocumentStore gets its own HiLo range from the server.
    other = store_factory()
    with other.open_session() as s:
        more = [User(f"w{i}", i) for i in range(3)]
        for u in more:
            s.store(u)
        ids_3 = [s.advanced.get_document_id(u) for u in more]
        s.save_changes()

    all_ids = ids_1 + ids_2 + ids_3
    for doc_id in all_ids:
        assert HILO_ID.match(doc_id), f"unexpected HiLo id {doc_id!r}"
    assert len(set(all_ids)) == len(all_ids), f"duplicate HiLo ids: {all_ids}"
    numbers = [int(HILO_ID.match(i).group(1)) for i in all_ids]
    assert all(n >= 1 for n in numbers)
    # Within one store the numbers are handed out in increasing order.
    assert numbers[: len(ids_1) + len(ids_2)] == sorted(numbers[: len(ids_1) + len(ids_2)])

    with store.open_session() as s:
        loaded = s.load(all_ids, User)
        assert all(loaded[i] is not None for i in all_ids)
        assert sorted(u.name for u in loaded.values()) == sorted(
            [f"u{i}" for i in range(5)] + [f"v{i}" for i in range(3)] + [f"w{i}" for i in range(3)]
        )
        assert s.advanced.get_metadata_for(loaded[ids_1[0]])["@collection"] == "Users"


# ----------------------------------------------------------------------------------------------
# Attachments
# ----------------------------------------------------------------------------------------------


def test_attachments(store):
    payload = bytes(range(256)) * 4 + b"\r\n--boundary-lookalike--\r\n"  # binary-safe, multipart-hostile
    text = "hello attachment \u00e9\n".encode("utf-8")

    with store.open_session() as s:
        s.store(User("Ann", 30), "users/1")
        s.advanced.attachments.store("users/1", "photo.png", payload, "image/png")
        s.advanced.attachments.store("users/1", "note.txt", text, "text/plain")
        s.save_changes()

    with store.open_session() as s:
        assert s.advanced.attachments.exists("users/1", "photo.png") is True
        assert s.advanced.attachments.exists("users/1", "note.txt") is True
        assert s.advanced.attachments.exists("users/1", "missing.bin") is False

        with s.advanced.attachments.get("users/1", "photo.png") as att:
            assert att.data == payload
            assert att.details.name == "photo.png"
            assert att.details.content_type == "image/png"
            assert int(att.details.size) == len(payload)  # from the Attachment-Size header (a str)
            assert att.details.document_id == "users/1"
            assert att.details.change_vector
            photo_hash = att.details.hash
            assert photo_hash
        with s.advanced.attachments.get("users/1", "note.txt") as att:
            assert att.data == text
            assert att.details.content_type == "text/plain"

        user = s.load("users/1", User)
        assert user.name == "Ann"
        names = {a.name: a for a in s.advanced.attachments.get_names(user)}
        assert set(names) == {"photo.png", "note.txt"}
        assert names["photo.png"].content_type == "image/png"
        assert names["photo.png"].size == len(payload)
        assert names["note.txt"].size == len(text)
        assert names["photo.png"].hash == photo_hash
        assert names["photo.png"].hash != names["note.txt"].hash
        assert s.advanced.get_metadata_for(user)["@flags"] == "HasAttachments"

    with store.open_session() as s:
        s.advanced.attachments.delete("users/1", "photo.png")
        s.save_changes()

    with store.open_session() as s:
        assert s.advanced.attachments.exists("users/1", "photo.png") is False
        assert s.advanced.attachments.exists("users/1", "note.txt") is True
        user = s.load("users/1", User)
        assert [a.name for a in s.advanced.attachments.get_names(user)] == ["note.txt"]


# ----------------------------------------------------------------------------------------------
# Queries
# ----------------------------------------------------------------------------------------------


def test_query_collection(store):
    _seed_users(
        store,
        {
            "users/1": ("Ann", 30),
            "users/2": ("Bob", 40),
            "users/3": ("Carl", 50),
            "users/4": ("Dora", 40),
        },
    )
    with store.open_session() as s:
        s.store(Company("Acme", "Oslo"), "companies/1")  # another collection: must not show up
        s.save_changes()

    with store.open_session() as s:
        users = list(s.query(object_type=User))
        assert len(users) == 4
        assert all(isinstance(u, User) for u in users)
        assert sorted(u.name for u in users) == ["Ann", "Bob", "Carl", "Dora"]
        ann = next(u for u in users if u.name == "Ann")
        assert s.advanced.get_document_id(ann) == "users/1"
        assert ann.age == 30

    with store.open_session() as s:
        assert s.query(object_type=User).count() == 4
        assert s.query(object_type=Company).count() == 1

    with store.open_session() as s:
        bobs = list(s.query(object_type=User).wait_for_non_stale_results().where_equals("name", "Bob"))
        assert [(b.name, b.age) for b in bobs] == [("Bob", 40)]
        assert s.advanced.get_document_id(bobs[0]) == "users/2"

        forties = list(s.query(object_type=User).wait_for_non_stale_results().where_equals("age", 40))
        assert sorted(u.name for u in forties) == ["Bob", "Dora"]

        nobody = list(s.query(object_type=User).wait_for_non_stale_results().where_equals("name", "Zed"))
        assert nobody == []

    with store.open_session() as s:
        ordered = [u.name for u in s.query(object_type=User).wait_for_non_stale_results().order_by("name")]
        assert ordered == ["Ann", "Bob", "Carl", "Dora"]

        page = [
            u.name for u in s.query(object_type=User).wait_for_non_stale_results().order_by("name").skip(1).take(2)
        ]
        assert page == ["Bob", "Carl"]

        last = [
            u.name for u in s.query(object_type=User).wait_for_non_stale_results().order_by("name").skip(3).take(10)
        ]
        assert last == ["Dora"]

        first_two = [u.name for u in s.query(object_type=User).wait_for_non_stale_results().order_by("name").take(2)]
        assert first_two == ["Ann", "Bob"]

    # Query results reflect deletes.
    with store.open_session() as s:
        s.delete("users/3")
        s.save_changes()
    with store.open_session() as s:
        assert s.query(object_type=User).count() == 3
        assert sorted(u.name for u in s.query(object_type=User)) == ["Ann", "Bob", "Dora"]
