"""Patching with the official Python client: session patch / increment / add_or_patch,
PatchOperation, PatchByQueryOperation and DeleteByQueryOperation with wait_for_completion.

Against RavenDB 4.1 (RAVENDB41_REFERENCE=1) the tests of what 4.1 predates are skipped:
JsonPatch commands, CreateIfMissing, `ChangeVector` in PatchResult and `OperationNodeTag` in the
answer that starts an operation (the 7.2.7 client reads it). The rest passes there.
"""

from __future__ import annotations

import pytest
from ravendb import DocumentStore, PatchByQueryOperation, PatchOperation, PatchRequest, PatchStatus
from ravendb.documents.conventions import SessionPatchBehavior
from ravendb.documents.operations.json_patch import JsonPatchDocument, JsonPatchOperation
from ravendb.documents.operations.misc import DeleteByQueryOperation
from ravendb.documents.queries.index_query import IndexQuery, Parameters
from ravendb.exceptions.raven_exceptions import RavenException

from conftest import RAVENDB41_REFERENCE

newer_than_41 = pytest.mark.skipif(RAVENDB41_REFERENCE, reason="RavenDB 4.1 predates this")


def _query(text: str, parameters: dict) -> IndexQuery:
    query = IndexQuery(text)
    query.query_parameters = Parameters(parameters)
    return query


class User:
    def __init__(self, name: str = None, age: int = 0, tags: list = None):
        self.name = name
        self.age = age
        self.tags = tags or []


def _store_users(store, count: int, prefix: str = "users/") -> None:
    with store.open_session() as session:
        for idx in range(count):
            session.store(User(f"user{idx}", idx, []), f"{prefix}{idx}")
        session.save_changes()


@pytest.fixture
def js_store(server_url, database):
    """A store whose sessions patch with JavaScript (`PATCH` commands) instead of JsonPatch."""
    s = DocumentStore(urls=[server_url], database=database)
    s.conventions.session_patch_behavior = SessionPatchBehavior.JAVA_SCRIPT
    s.initialize()
    yield s
    s.close()


@pytest.mark.parametrize(
    "behaviour", [pytest.param("json_patch", marks=newer_than_41), "java_script"]
)
def test_session_patch_and_increment(request, behaviour):
    store = request.getfixturevalue("store" if behaviour == "json_patch" else "js_store")
    _store_users(store, 1)
    with store.open_session() as session:
        user = session.load("users/0", User)
        session.advanced.patch(user, "name", "Patched")
        session.advanced.increment(user, "age", 5)
        session.save_changes()
        # The tracked entity follows the patched document.
    with store.open_session() as session:
        loaded = session.load("users/0", User)
        assert loaded.name == "Patched"
        assert loaded.age == 5

    with store.open_session() as session:
        session.advanced.increment("users/0", "age", 10)
        session.advanced.patch_array("users/0", "tags", lambda array: array.add("a", "b"))
        session.save_changes()
    with store.open_session() as session:
        loaded = session.load("users/0", User)
        assert loaded.age == 15
        assert loaded.tags == ["a", "b"]

    with store.open_session() as session:
        session.advanced.patch_array("users/0", "tags", lambda array: array.add("c").remove_at(0))
        session.save_changes()
    with store.open_session() as session:
        assert session.load("users/0", User).tags == ["b", "c"]


@newer_than_41
def test_session_add_or_patch_creates_then_patches(store):
    for _ in range(2):
        with store.open_session() as session:
            session.advanced.add_or_increment("users/42", User("new", 1), "age", 3)
            session.save_changes()
    with store.open_session() as session:
        loaded = session.load("users/42", User)
        assert loaded.name == "new"
        # Created as given, then incremented once.
        assert loaded.age == 4
        assert session.advanced.get_metadata_for(loaded)["@collection"] == "Users"


def test_patch_operation_statuses(store):
    _store_users(store, 1)
    result = store.operations.send(
        PatchOperation("users/0", None, PatchRequest("this.age += args.by; this.name = args.name;", {"by": 7, "name": "Op"}))
    )
    assert result.status == PatchStatus.PATCHED
    assert result.modified_document["age"] == 7
    if not RAVENDB41_REFERENCE:  # 4.1's PatchResult has no ChangeVector
        assert result.change_vector
    with store.open_session() as session:
        loaded = session.load("users/0", User)
        assert (loaded.name, loaded.age) == ("Op", 7)

    not_modified = store.operations.send(PatchOperation("users/0", None, PatchRequest("this.age = this.age;")))
    assert not_modified.status == PatchStatus.NOT_MODIFIED
    # A missing document is a 404, which the client reads as no result.
    assert store.operations.send(PatchOperation("users/missing", None, PatchRequest("this.age = 1;"))) is None
    created = store.operations.send(
        PatchOperation(
            "users/new",
            None,
            PatchRequest("this.age = 1;"),
            PatchRequest("this.name = 'made'; this['@metadata'] = {'@collection': 'Users'};"),
        )
    )
    assert created.status == PatchStatus.CREATED
    with store.open_session() as session:
        assert session.load("users/new", User).name == "made"


@newer_than_41
def test_json_patch_operation(store):
    _store_users(store, 1)
    patch = JsonPatchDocument().replace("/name", "Json").add("/tags/-", "t").remove("/age")
    result = store.operations.send(JsonPatchOperation("users/0", patch))
    assert result.status == PatchStatus.PATCHED
    assert result.modified_document["name"] == "Json"
    with store.open_session() as session:
        loaded = session.load("users/0", dict)
        assert loaded["tags"] == ["t"]
        assert "age" not in loaded
    with pytest.raises(RavenException):
        store.operations.send(JsonPatchOperation("users/0", JsonPatchDocument().test("/name", "Other")))


def test_patch_operation_with_a_stale_change_vector_conflicts(store):
    _store_users(store, 1)
    with pytest.raises(RavenException) as raised:
        store.operations.send(PatchOperation("users/0", "A:1-stale", PatchRequest("this.age = 99;")))
    assert "change vector" in str(raised.value)
    with store.open_session() as session:
        assert session.load("users/0", User).age == 0


def test_patch_operation_script_errors_raise(store):
    _store_users(store, 1)
    for script in ["while (true) {}", "this.age = ;"]:
        with pytest.raises(Exception):
            store.operations.send(PatchOperation("users/0", None, PatchRequest(script)))
    assert store.operations.send(PatchOperation("users/0", None, PatchRequest("this.age = 3;"))).status == (
        PatchStatus.PATCHED
    )


@newer_than_41
def test_patch_by_query_and_wait(store):
    _store_users(store, 50)
    operation = store.operations.send_async(
        PatchByQueryOperation(
            _query("from Users where name = $n update { this.age = 1000; }", {"n": "user7"})
        )
    )
    operation.wait_for_completion()
    operation = store.operations.send_async(PatchByQueryOperation("from Users update { this.seen = true; }"))
    operation.wait_for_completion()
    with store.open_session() as session:
        assert session.load("users/7", User).age == 1000
        assert session.load("users/8", User).age == 8
        seen = list(session.advanced.raw_query("from Users where seen = true", dict))
        assert len(seen) == 50


@newer_than_41
def test_delete_by_query_and_wait(store):
    _store_users(store, 20)
    operation = store.operations.send_async(
        DeleteByQueryOperation(_query("from Users where name = $n", {"n": "user3"}))
    )
    operation.wait_for_completion()
    with store.open_session() as session:
        assert session.load("users/3", User) is None
        assert session.load("users/4", User) is not None
    operation = store.operations.send_async(DeleteByQueryOperation("from Users"))
    operation.wait_for_completion()
    with store.open_session() as session:
        assert session.query(object_type=User).count() == 0


@newer_than_41
def test_a_faulted_patch_by_query_raises_on_wait(store):
    _store_users(store, 2)
    operation = store.operations.send_async(PatchByQueryOperation("from Users update { throw new Error('bad doc'); }"))
    with pytest.raises(Exception) as raised:
        operation.wait_for_completion()
    assert "bad doc" in str(raised.value)
