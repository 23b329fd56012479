"""The Changes API, aggressive caching and lazy operations with the official Python client.

Every change here is made by ANOTHER DocumentStore than the one watching, so it can only arrive
through the server's `/changes` WebSocket.
"""

from __future__ import annotations

import datetime
import queue
import time

from ravendb.changes.types import DocumentChangeType

from test_client import Company, User


def _watch(observable) -> "queue.Queue":
    """Subscribes a queue to an observable and waits until the server confirmed the watch."""
    received: queue.Queue = queue.Queue()
    observable.subscribe(received.put)
    observable.ensure_subscribe_now()
    return received


def _next(received: "queue.Queue", timeout: float = 10.0):
    return received.get(timeout=timeout)


def _assert_nothing_more(received: "queue.Queue", wait: float = 0.5) -> None:
    time.sleep(wait)
    assert received.empty(), f"unexpected change: {received.get_nowait()}"


def _store_doc(store, doc_id: str, entity) -> None:
    with store.open_session() as s:
        s.store(entity, doc_id)
        s.save_changes()


def test_for_document_sees_puts_and_deletes_from_another_store(store, store_factory):
    changes = store.changes()
    changes.ensure_connected_now()
    received = _watch(changes.for_document("users/1"))

    writer = store_factory()
    _store_doc(writer, "users/2", User("Bob", 40))  # another document: not for this watch
    _store_doc(writer, "users/1", User("Ann", 30))
    put = _next(received)
    assert put.type_of_change == DocumentChangeType.PUT
    assert put.key == "users/1"
    assert put.collection_name == "Users"
    with writer.open_session() as s:
        assert put.change_vector == s.advanced.get_change_vector_for(s.load("users/1", User))

    with writer.open_session() as s:
        s.delete("users/1")
        s.save_changes()
    deleted = _next(received)
    assert (deleted.type_of_change, deleted.key) == (DocumentChangeType.DELETE, "users/1")
    _assert_nothing_more(received)


def test_for_all_documents_sees_every_change_in_commit_order(store, store_factory):
    changes = store.changes()
    changes.ensure_connected_now()
    received = _watch(changes.for_all_documents())

    writer = store_factory()
    ids = [f"users/{idx}" for idx in range(20)]
    for doc_id in ids:
        _store_doc(writer, doc_id, User(doc_id, 1))
    _store_doc(writer, "companies/1", Company("Acme"))
    seen = [_next(received).key for _ in range(len(ids) + 1)]
    assert seen == ids + ["companies/1"]


def test_for_collection_and_prefix(store, store_factory):
    changes = store.changes()
    changes.ensure_connected_now()
    companies = _watch(changes.for_documents_in_collection("Companies"))
    prefixed = _watch(changes.for_documents_start_with("users/a"))

    writer = store_factory()
    _store_doc(writer, "users/b1", User("Bob", 1))
    _store_doc(writer, "users/a1", User("Ann", 1))
    _store_doc(writer, "companies/1", Company("Acme"))
    assert _next(prefixed).key == "users/a1"
    assert _next(companies).key == "companies/1"
    _assert_nothing_more(prefixed)
    _assert_nothing_more(companies, wait=0)


def test_aggressive_caching_serves_from_cache_until_a_change_arrives(store, store_factory):
    _store_doc(store, "users/1", User("Ann", 30))
    executor = store.get_request_executor()
    started = time.monotonic()
    with store.aggressively_cache_for(datetime.timedelta(minutes=5)):
        # The client connected to /changes and had its watches confirmed, without waiting.
        assert time.monotonic() - started < 5
        with store.open_session() as s:
            assert s.load("users/1", User).name == "Ann"
        requests_before = executor.number_of_server_requests
        with store.open_session() as s:
            assert s.load("users/1", User).name == "Ann"
        assert executor.number_of_server_requests == requests_before, "not served from the cache"

        # Another store changes the document; once the change notification arrived, the cache
        # is stale and the next load asks the server again.
        received = _watch(store.changes().for_document("users/1"))
        writer = store_factory()
        with writer.open_session() as s:
            s.load("users/1", User).name = "Annie"
            s.save_changes()
        _next(received)
        with store.open_session() as s:
            assert s.load("users/1", User).name == "Annie"


def test_lazy_load_and_lazy_query_in_one_multi_get(store):
    _store_doc(store, "users/1", User("Ann", 30))
    _store_doc(store, "users/2", User("Bob", 40))
    _store_doc(store, "companies/1", Company("Acme"))
    executor = store.get_request_executor()
    with store.open_session() as s:
        lazy_user = s.advanced.lazily.load("users/1", User)
        lazy_missing = s.advanced.lazily.load("users/404", User)
        lazy_companies = s.query(object_type=Company).lazily()
        lazy_count = s.query(object_type=User).count_lazily()
        requests_before = executor.number_of_server_requests
        s.advanced.eagerly.execute_all_pending_lazy_operations()
        assert executor.number_of_server_requests == requests_before + 1, "one multi_get request"
        assert lazy_user.value.name == "Ann"
        assert lazy_missing.value is None
        assert [it.name for it in lazy_companies.value] == ["Acme"]
        assert lazy_count.value == 2


def test_lazy_load_again_is_answered_not_modified(store):
    _store_doc(store, "users/1", User("Ann", 30))
    with store.open_session() as s:
        first = s.advanced.lazily.load("users/1", User)
        assert first.value.name == "Ann"
    # A second session's lazy load sends the cached change vector in If-None-Match; the inner
    # 304 makes the client use its cached copy, which must still be the right document.
    with store.open_session() as s:
        again = s.advanced.lazily.load("users/1", User)
        assert again.value.name == "Ann"
    _store_doc(store, "users/1", User("Annie", 31))
    with store.open_session() as s:
        changed = s.advanced.lazily.load("users/1", User)
        assert changed.value.name == "Annie"


def test_aggressively_cached_query_sees_a_new_document_after_the_notification(store, store_factory):
    _store_doc(store, "users/1", User("Ann", 30))
    executor = store.get_request_executor()
    with store.aggressively_cache_for(datetime.timedelta(minutes=5)):
        with store.open_session() as s:
            assert [u.name for u in s.query(object_type=User)] == ["Ann"]
        requests_before = executor.number_of_server_requests
        with store.open_session() as s:
            assert [u.name for u in s.query(object_type=User)] == ["Ann"]
        assert executor.number_of_server_requests == requests_before, "not served from the cache"

        received = _watch(store.changes().for_documents_in_collection("Users"))
        _store_doc(store_factory(), "users/2", User("Bob", 40))
        _next(received)
        with store.open_session() as s:
            assert sorted(u.name for u in s.query(object_type=User)) == ["Ann", "Bob"]
