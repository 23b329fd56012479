"""Raven ETL driven through the official RavenDB Python client (ravendb==7.2.7) against CORVID_URL.

Connection strings and ongoing tasks use the client's own operations. Add, update and reset ETL
are not in the 7.2.7 client; ``etl_ops.py`` provides them in the C# client's wire format (see
shared/spec/client-protocol.md §0 and §7).

Each test creates its own source and destination databases on the server under test, with a Raven
connection string in the source that points at the destination on the same server. ETL is
asynchronous, so arrivals are awaited by polling with a deadline (``ARRIVAL_TIMEOUT``). The checks
that something does *not* arrive wait ``QUIET_PERIOD``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Optional, TypeVar

import pytest
from ravendb import (
    DeleteOngoingTaskOperation,
    DocumentStore,
    GetConnectionStringsOperation,
    GetOngoingTaskInfoOperation,
    OngoingTaskConnectionStatus,
    OngoingTaskState,
    OngoingTaskType,
    PutConnectionStringOperation,
    RavenConnectionString,
    RavenEtlConfiguration,
    RemoveConnectionStringOperation,
    ToggleOngoingTaskStateOperation,
    Transformation,
)
from ravendb.exceptions.raven_exceptions import RavenException
from ravendb.serverwide.server_operation_executor import ConnectionStringType

from conftest import create_database_lenient, delete_database, delete_database_quietly, unique_db_name
from etl_ops import AddEtlOperation, ResetEtlOperation, UpdateEtlOperation

ARRIVAL_TIMEOUT = 20.0  # seconds a change may take to show up in the destination
QUIET_PERIOD = 1.0  # seconds during which a change must *not* show up
POLL_INTERVAL = 0.05

CS_NAME = "raven-cs"
PEOPLE_ID = re.compile(r"^users/(\d+)/people/")

T = TypeVar("T")


class User:
    def __init__(self, name: str = None, age: int = None):
        self.name = name
        self.age = age


class Company:
    def __init__(self, name: str = None):
        self.name = name


# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------


@dataclass
class EtlEnv:
    url: str
    src_name: str
    dst_name: str
    src: DocumentStore
    dst: DocumentStore

    def connection_string(self, name: str = CS_NAME) -> RavenConnectionString:
        return RavenConnectionString(name, self.dst_name, [self.url])


@pytest.fixture
def etl(admin_store, server_url, request):
    """A source and a destination database, each with its own store; both hard-deleted afterwards
    (the source first, so that its ETL stops before the destination goes away)."""
    src_name = unique_db_name(request.node.name + "_src")
    dst_name = unique_db_name(request.node.name + "_dst")
    created = []
    try:
        for name in (src_name, dst_name):
            created.append(name)
            create_database_lenient(admin_store, name)
    except BaseException:
        for name in created:
            delete_database_quietly(admin_store, name)
        raise
    src = DocumentStore(urls=[server_url], database=src_name)
    dst = DocumentStore(urls=[server_url], database=dst_name)
    src.initialize()
    dst.initialize()
    try:
        yield EtlEnv(server_url, src_name, dst_name, src, dst)
    finally:
        src.close()
        dst.close()
        try:
            delete_database(admin_store, src_name)
        finally:
            delete_database(admin_store, dst_name)


def wait_for(what: str, probe: Callable[[], T], timeout: float = ARRIVAL_TIMEOUT) -> T:
    """Call ``probe`` until it returns a truthy value, and return that value; fail after
    ``timeout`` seconds, showing the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last probe: {value!r}")
        time.sleep(POLL_INTERVAL)


def load_user(store: DocumentStore, doc_id: str) -> Optional[User]:
    with store.open_session() as s:
        return s.load(doc_id, User)


def load_user_name(store: DocumentStore, doc_id: str) -> Optional[str]:
    user = load_user(store, doc_id)
    return None if user is None else user.name


def people(store: DocumentStore) -> dict:
    """The destination's People documents: {id: Name}."""
    with store.open_session() as s:
        return {doc["@metadata"]["@id"]: doc.get("Name") for doc in s.query_collection("People", dict)}


def people_by_source(store: DocumentStore) -> dict:
    """{source user number: [(people id, Name), ...]} for the destination's People documents."""
    result = {}
    for doc_id, name in people(store).items():
        match = PEOPLE_ID.match(doc_id)
        assert match, f"People document id {doc_id!r} does not start with users/<n>/people/"
        result.setdefault(int(match.group(1)), []).append((doc_id, name))
    return result


def wait_for_people(store: DocumentStore, what: str, accept: Callable[[dict], bool]) -> dict:
    """Poll ``people_by_source`` until ``accept`` holds for it, and return it."""

    def probe():
        by_source = people_by_source(store)
        return by_source if accept(by_source) else None

    return wait_for(what, probe)


def names(entries) -> list:
    return [name for _, name in entries]


def store_users(store: DocumentStore, users: dict) -> None:
    """users: {id: name}"""
    with store.open_session() as s:
        for doc_id, name in users.items():
            s.store(User(name), doc_id)
        s.save_changes()


def raven_etl(name: str, script: Optional[str]) -> RavenEtlConfiguration:
    """A Raven ETL task over Users with one transformation, ``script1``, through ``CS_NAME``."""
    return RavenEtlConfiguration(
        name=name,
        connection_string_name=CS_NAME,
        transforms=[Transformation(name="script1", collections=["Users"], script=script)],
    )


def add_connection_string_and_task(env: EtlEnv, cfg: RavenEtlConfiguration) -> int:
    env.src.maintenance.send(PutConnectionStringOperation(env.connection_string()))
    result = env.src.maintenance.send(AddEtlOperation(cfg))
    assert isinstance(result.task_id, int) and result.task_id > 0, vars(result)
    return result.task_id


def task_info(env: EtlEnv, task_id_or_name):
    return env.src.maintenance.send(GetOngoingTaskInfoOperation(task_id_or_name, OngoingTaskType.RAVEN_ETL))


PEOPLE_SCRIPT = "loadToPeople({Name: this.name + '!'})"
# The other tests use "" for an empty script, so that they do not depend on how a null Script is
# handled (test_connection_string_and_empty_script_etl checks both).
EMPTY_SCRIPT = ""


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------


# The Python client leaves ``Transformation.script`` None unless it is set, so an "empty script"
# usually arrives as ``"Script": null``. RavenDB treats null like "" (checked on 4.1
# with POST /admin/etl/raven/test: the whole document goes to Users unchanged).
@pytest.mark.parametrize("empty_script", [None, ""], ids=["null_script", "empty_string_script"])
def test_connection_string_and_empty_script_etl(etl, empty_script):
    env = etl
    # Connection string: put, then read back (all, and by name and type).
    put = env.src.maintenance.send(PutConnectionStringOperation(env.connection_string()))
    assert isinstance(put.raft_command_index, int)

    every = env.src.maintenance.send(GetConnectionStringsOperation())
    assert list(every.raven_connection_strings) == [CS_NAME]
    cs = every.raven_connection_strings[CS_NAME]
    assert (cs.name, cs.database, cs.topology_discovery_urls) == (CS_NAME, env.dst_name, [env.url])
    assert not every.sql_connection_strings

    by_name = env.src.maintenance.send(GetConnectionStringsOperation(CS_NAME, ConnectionStringType.RAVEN))
    assert by_name.raven_connection_strings[CS_NAME].database == env.dst_name

    # ETL with an empty script: Users go unchanged, with the same id, to the same collection.
    added = env.src.maintenance.send(AddEtlOperation(raven_etl("users-to-dst", empty_script)))
    assert isinstance(added.task_id, int) and added.task_id > 0
    assert isinstance(added.raft_command_index, int)

    with env.src.open_session() as s:
        s.store(Company("Acme"), "companies/1")  # not in the task's collections
        s.store(User("Alice", 30), "users/1")
        s.store(User("Bob", 40), "users/2")
        s.save_changes()

    wait_for(
        "users/1 and users/2 in the destination",
        lambda: load_user(env.dst, "users/1") and load_user(env.dst, "users/2"),
    )
    with env.dst.open_session() as s:
        alice = s.load("users/1", User)
        bob = s.load("users/2", User)
        assert (alice.name, alice.age) == ("Alice", 30)
        assert (bob.name, bob.age) == ("Bob", 40)
        metadata = s.advanced.get_metadata_for(alice)
        assert metadata["@collection"] == "Users"
        assert metadata["@id"] == "users/1"
        # companies/1 came earlier in the same batch: had it been sent, it would be here by now.
        assert s.load("companies/1", Company) is None

    # An update arrives.
    with env.src.open_session() as s:
        s.load("users/1", User).name = "Alicia"
        s.save_changes()
    wait_for("the update of users/1", lambda: load_user_name(env.dst, "users/1") == "Alicia")

    # A delete arrives.
    with env.src.open_session() as s:
        s.delete("users/2")
        s.save_changes()
    wait_for("the delete of users/2", lambda: load_user(env.dst, "users/2") is None)
    assert load_user_name(env.dst, "users/1") == "Alicia"


def test_script_loads_to_other_collection(etl):
    env = etl
    add_connection_string_and_task(env, raven_etl("users-to-people", PEOPLE_SCRIPT))
    store_users(env.src, {"users/1": "Alice", "users/2": "Bob"})

    by_source = wait_for_people(env.dst, "two People documents", lambda p: sum(map(len, p.values())) == 2)
    assert sorted(by_source) == [1, 2], by_source
    assert names(by_source[1]) == ["Alice!"]
    assert names(by_source[2]) == ["Bob!"]
    # A script that loads only to People sends no Users document.
    assert load_user(env.dst, "users/1") is None

    # An update replaces the earlier People document of that user (prefix delete, then put).
    (old_alice_id, _), = by_source[1]
    store_users(env.src, {"users/1": "Alicia"})
    by_source = wait_for_people(
        env.dst, "the update of users/1 in People", lambda p: names(p.get(1, [])) == ["Alicia!"]
    )
    assert by_source[1][0][0] != old_alice_id
    assert names(by_source[2]) == ["Bob!"]

    # A delete of the source removes its People documents.
    with env.src.open_session() as s:
        s.delete("users/2")
        s.save_changes()
    by_source = wait_for_people(env.dst, "the delete of users/2 in People", lambda p: 2 not in p)
    assert names(by_source[1]) == ["Alicia!"]


def test_task_info_and_toggle(etl):
    env = etl
    task_id = add_connection_string_and_task(env, raven_etl("users-to-dst", EMPTY_SCRIPT))
    store_users(env.src, {"users/1": "Alice"})
    wait_for("users/1 in the destination", lambda: load_user(env.dst, "users/1"))

    for key in (task_id, "users-to-dst"):
        info = task_info(env, key)
        assert info is not None, key
        assert info.task_id == task_id
        assert info.task_name == "users-to-dst"
        assert info.task_type == OngoingTaskType.RAVEN_ETL
        assert info.task_state == OngoingTaskState.ENABLED
        assert info.task_connection_status == OngoingTaskConnectionStatus.ACTIVE

    # Disable (by id): state Disabled, and new writes stay in the source.
    toggled = env.src.maintenance.send(
        ToggleOngoingTaskStateOperation(task_id, OngoingTaskType.RAVEN_ETL, True)
    )
    assert toggled.task_id == task_id
    assert task_info(env, task_id).task_state == OngoingTaskState.DISABLED
    store_users(env.src, {"users/2": "Bob"})
    time.sleep(QUIET_PERIOD)
    assert load_user(env.dst, "users/2") is None, "a disabled ETL task sent a document"

    # Enable again (by name): state Enabled, and the pending write arrives.
    toggled = env.src.maintenance.send(
        ToggleOngoingTaskStateOperation("users-to-dst", OngoingTaskType.RAVEN_ETL, False)
    )
    assert toggled.task_id == task_id
    assert task_info(env, "users-to-dst").task_state == OngoingTaskState.ENABLED
    wait_for("users/2 after re-enabling", lambda: load_user_name(env.dst, "users/2") == "Bob")


def test_update_reset_and_delete_task(etl):
    env = etl
    cfg = raven_etl("users-to-people", PEOPLE_SCRIPT)
    task_id = add_connection_string_and_task(env, cfg)
    store_users(env.src, {"users/1": "Alice"})
    wait_for("People for users/1", lambda: list(people(env.dst).values()) == ["Alice!"])

    # Update the script: a new TaskId; the old id is gone; later changes use the new script, and
    # the progress of the transformation is kept (users/1 is not sent again).
    updated_cfg = raven_etl("users-to-people", "loadToPeople({Name: this.name + '?'})")
    updated = env.src.maintenance.send(UpdateEtlOperation(task_id, updated_cfg))
    assert isinstance(updated.raft_command_index, int)
    assert isinstance(updated.task_id, int) and updated.task_id != task_id, vars(updated)
    new_id = updated.task_id
    assert task_info(env, task_id) is None
    info = task_info(env, new_id)
    assert info.task_id == new_id
    assert info.task_name == "users-to-people"
    assert info.task_state == OngoingTaskState.ENABLED
    assert task_info(env, "users-to-people").task_id == new_id

    store_users(env.src, {"users/2": "Bob"})
    by_source = wait_for_people(env.dst, "People for users/2", lambda p: 2 in p)
    assert names(by_source[2]) == ["Bob?"]
    assert names(by_source[1]) == ["Alice!"], "the update alone re-sent users/1"
    ids_before_reset = set(people(env.dst))

    # Reset: everything is sent again; cross-collection loads get new ids.
    env.src.maintenance.send(ResetEtlOperation("users-to-people", "script1"))

    def resent():
        current = people(env.dst)
        fresh_ids = not set(current) & ids_before_reset
        if len(current) == 2 and fresh_ids and sorted(current.values()) == ["Alice?", "Bob?"]:
            return current
        return None

    after_reset = wait_for("every user sent again after the reset", resent)
    assert all(PEOPLE_ID.match(doc_id) for doc_id in after_reset)

    # Delete the task: it is gone by id and by name, and it sends nothing more.
    deleted = env.src.maintenance.send(DeleteOngoingTaskOperation(new_id, OngoingTaskType.RAVEN_ETL))
    assert deleted.task_id == new_id
    assert task_info(env, new_id) is None
    assert task_info(env, "users-to-people") is None
    store_users(env.src, {"users/3": "Carol"})
    time.sleep(QUIET_PERIOD)
    assert people(env.dst) == after_reset, "a deleted ETL task sent a document"


def test_remove_connection_string_in_use(etl):
    env = etl
    task_id = add_connection_string_and_task(env, raven_etl("users-to-dst", EMPTY_SCRIPT))

    with pytest.raises(RavenException) as exc_info:
        env.src.maintenance.send(RemoveConnectionStringOperation(env.connection_string()))
    assert "users-to-dst" in str(exc_info.value), str(exc_info.value)
    still = env.src.maintenance.send(GetConnectionStringsOperation())
    assert CS_NAME in (still.raven_connection_strings or {})

    env.src.maintenance.send(DeleteOngoingTaskOperation(task_id, OngoingTaskType.RAVEN_ETL))
    removed = env.src.maintenance.send(RemoveConnectionStringOperation(env.connection_string()))
    assert isinstance(removed.raft_command_index, int)
    after = env.src.maintenance.send(GetConnectionStringsOperation())
    assert not after.raven_connection_strings


def test_script_syntax_error_rejected(etl):
    env = etl
    env.src.maintenance.send(PutConnectionStringOperation(env.connection_string()))
    script = "var name = this.name;\n\nloadToPeople({Name: name + });\n"  # error on line 3
    with pytest.raises(RavenException) as exc_info:
        env.src.maintenance.send(AddEtlOperation(raven_etl("broken", script)))
    message = str(exc_info.value)
    assert re.search(r"\bline\b\D{0,3}3\b", message, re.IGNORECASE), message
    # Nothing was created.
    assert task_info(env, "broken") is None
