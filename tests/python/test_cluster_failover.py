"""Issue 16 with the official Python client: a replicated database survives kill -9 of a node.

Three `corvid serve` processes on loopback addresses form a cluster, and a database is created
on all three with replication factor 3 (`CreateDatabaseOperation(..., replication_factor=3)`).
One `DocumentStore` given all three URLs writes documents in a loop, one session per batch.
While it writes, the node it writes to is killed with SIGKILL: the database group's leader, the
first node of `/topology?name=`, which every write goes through (the client sends some writes to
the followers, which forward them to it; see README.md, "Cluster failover"). The client must
fail over by itself and the writes go on through the other two. Every write whose
`save_changes()` returned must be on both survivors. The killed node is then started again on
the same port, data directory and tag, and must catch up: the same documents, with the same
change vectors, as the others.

The test starts its own three nodes and does not use CORVID_URL. The binary is CORVID_BIN
(scripts/check sets it to the debug build), or else `<repo>/target/debug/corvid`; the test is
skipped only when CORVID_BIN is unset and that default binary does not exist.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest
from ravendb import CreateDatabaseOperation, DocumentStore
from ravendb.serverwide.database_record import DatabaseRecord

from conftest import unique_db_name

REPO = Path(__file__).resolve().parents[2]
TAGS = ("A", "B", "C")

BATCH_SIZE = 5  # documents per session / save_changes()
BATCHES_BEFORE_KILL = 40  # acknowledged batches before the node is killed
BATCHES_AFTER_KILL = 60  # batches written (and acknowledged) after the kill
BATCHES_AFTER_RETURN = 10  # batches written once the killed node is back
BATCH_RETRY_LIMIT = 30.0  # seconds a batch may be retried before the test gives up
CATCH_UP_LIMIT = 30.0  # seconds the returning node has to catch up


def _binary() -> Path:
    explicit = os.environ.get("CORVID_BIN", "").strip()
    if explicit:
        path = Path(explicit)
        # Set by scripts/check: a missing binary there is a failure, never a skip.
        assert path.is_file(), f"CORVID_BIN={explicit} does not exist"
        return path
    path = REPO / "target" / "debug" / "corvid"
    if not path.is_file():
        pytest.skip(f"no corvid binary at {path}: run `cargo build -p corvid` or set CORVID_BIN")
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, timeout: float = 30.0) -> tuple[int, object]:
    """The status and the JSON answer (None when the body is empty or not JSON)."""
    data = b"" if method in ("PUT", "POST") else None
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, body.decode("utf-8", "replace")


@dataclass
class Node:
    """One `corvid serve` process: fixed port, data directory and tag, so it comes back as itself."""

    binary: Path
    root: Path
    tag: str
    port: int = field(default_factory=_free_port)
    process: Optional[subprocess.Popen] = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / f"{self.tag}.log"

    def start(self) -> None:
        self.starts += 1
        stdout_path = self.root / f"{self.tag}.{self.starts}.out"
        env = dict(os.environ, RUST_LOG="warn,openraft=off")
        with open(stdout_path, "wb") as stdout, open(self.log, "ab") as stderr:
            self.process = subprocess.Popen(
                [
                    str(self.binary), "serve",
                    "--bind", f"127.0.0.1:{self.port}",
                    "--data-dir", str(self.root / self.tag),
                    "--node-tag", self.tag,
                    "--public-url", self.url,
                ],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
            )
        # The first stdout line says the node listens. stdout goes to a file rather than a pipe,
        # so a node that prints more can never block on a pipe nobody reads.
        deadline = time.monotonic() + 30
        while True:
            first = stdout_path.read_text(errors="replace").split("\n", 1)
            if len(first) == 2:
                break
            assert self.process.poll() is None, f"node {self.tag} exited: {self.log_tail()}"
            assert time.monotonic() < deadline, f"node {self.tag} did not start: {self.log_tail()}"
            time.sleep(0.05)
        assert first[0] == f"Corvid listening on {self.url}", (self.tag, first[0])

    def kill(self) -> None:
        """kill -9."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return f"\n--- {self.tag}.log ---\n" + "\n".join(text[-lines:])


def _logs(nodes) -> str:
    return "".join(node.log_tail() for node in nodes)


def _wait(what: str, limit: float, check, nodes) -> float:
    """Polls ``check`` until it returns a true value; returns the seconds it took."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < limit:
        last = check()
        if last is True:
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"timed out after {limit:.0f} s waiting for {what}; last: {last}{_logs(nodes)}")


def _cluster_agreed(nodes) -> object:
    views = [_http("GET", f"{node.url}/cluster/topology")[1] for node in nodes]
    ok = all(
        isinstance(view, dict)
        and sorted(view["Topology"]["Members"]) == list(TAGS)
        and view.get("Leader") in TAGS
        and view.get("Leader") == views[0].get("Leader")
        for view in views
    )
    return True if ok else views


def _database_nodes(node: Node, database: str) -> list[str]:
    """The tags `GET /topology?name=` lists on ``node`` (the group's leader first)."""
    status, body = _http("GET", f"{node.url}/topology?name={database}", timeout=10)
    assert status == 200, (node.tag, status, body)
    return [it["ClusterTag"] for it in body["Nodes"]]


def _contents(node: Node, database: str) -> dict[str, str]:
    """Every document of ``database`` on ``node`` (only this node): id -> change vector."""
    status, body = _http("GET", f"{node.url}/databases/{database}/docs?pageSize=1000000", timeout=10)
    assert status == 200, (node.tag, status, body)
    return {doc["@metadata"]["@id"]: doc["@metadata"]["@change-vector"] for doc in body["Results"]}


class Item:
    def __init__(self, batch: int = 0, seq: int = 0, phase: str = ""):
        self.batch = batch
        self.seq = seq
        self.phase = phase


@dataclass
class Writer:
    """Writes batches through one DocumentStore; remembers what was acknowledged."""

    store: DocumentStore
    acknowledged: list[str] = field(default_factory=list)
    next_batch: int = 0
    errors: list[str] = field(default_factory=list)  # what save_changes raised, in order
    retry: bool = False  # True only from the kill until the writes after it are done
    batch_seconds: list[tuple[float, float, str]] = field(default_factory=list)  # (start, duration, phase)
    node_tags: dict[str, str] = field(default_factory=dict)  # url -> tag
    requests: list[tuple[float, str]] = field(default_factory=list)  # (when, tag) of each bulk_docs sent
    failed: list[tuple[float, str]] = field(default_factory=list)  # (when, what) the client failed over on

    def __post_init__(self) -> None:
        executor = self.store.get_request_executor()
        executor.add_on_before_request(self._before)
        executor.add_on_failed_request(self._failed)

    def _tag(self, url: str) -> str:
        return next((tag for base, tag in self.node_tags.items() if url.startswith(base + "/")), url)

    def _before(self, args) -> None:
        if "/bulk_docs" in args.url:
            self.requests.append((time.monotonic(), self._tag(args.url)))

    def _failed(self, args) -> None:
        self.failed.append((time.monotonic(), f"{self._tag(args.url)}: {type(args.exception).__name__}"))

    @property
    def sent_to(self) -> set[str]:
        return {tag for _, tag in self.requests}

    def write_batch(self, phase: str) -> None:
        batch = self.next_batch
        self.next_batch += 1
        ids = [f"items/{batch:04d}-{seq}" for seq in range(BATCH_SIZE)]
        started = time.monotonic()
        # The client fails over by itself: a refused connection to the killed node sends the
        # request to the next node of the topology, and a 503 (no leader yet, or "not committed
        # in time") to the one after. But if every node has refused the same request once while
        # the group is still electing its new leader (a follower waits up to 5 s for one), the
        # client gives up and save_changes raises (AllTopologyNodesDownException). An application
        # retries such a batch, and so does this test, but only between the kill and the end of
        # the writes after it (self.retry): the same ids, in a fresh session, after a short
        # sleep, for at most BATCH_RETRY_LIMIT seconds. Any failure outside that window fails
        # the test at once. A batch that raised may still have been committed; that is allowed
        # (puts by id are idempotent), only acknowledged ids are checked.
        while True:
            try:
                with self.store.open_session() as session:
                    for seq, id_ in enumerate(ids):
                        session.store(Item(batch, seq, phase), id_)
                    session.save_changes()
                break
            except Exception as error:  # noqa: BLE001 - recorded, and retried only around the kill
                if not self.retry:
                    raise
                at = time.monotonic() - started
                self.errors.append(f"batch {batch} at +{at:.2f} s: {type(error).__name__}: {error}"[:600])
                assert at < BATCH_RETRY_LIMIT, (
                    f"writes stopped: batch {batch} failed for {BATCH_RETRY_LIMIT:.0f} s; errors: {self.errors[-5:]}"
                )
                time.sleep(0.2)
        now = time.monotonic()
        self.batch_seconds.append((started, now - started, phase))
        self.acknowledged.extend(ids)


def test_cluster_failover_kill_the_node_the_client_writes_to():
    binary = _binary()
    test_started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="corvid-failover-") as root:
        nodes = [Node(binary, Path(root), tag) for tag in TAGS]
        stores: list[DocumentStore] = []
        try:
            for node in nodes:
                node.start()
            by_tag = {node.tag: node for node in nodes}
            a = by_tag["A"]

            # The cluster: B and C added through A.
            for tag in ("B", "C"):
                status, body = _http("PUT", f"{a.url}/admin/cluster/node?url={by_tag[tag].url}&tag={tag}")
                assert status == 200, f"adding {tag}: {status} {body}{_logs(nodes)}"
            _wait("the three nodes to agree on the cluster", 30, lambda: _cluster_agreed(nodes), nodes)

            # The database, on all three nodes, through the client's own operation.
            database = unique_db_name("cluster_failover")
            admin = DocumentStore(urls=[a.url])
            admin.initialize()
            stores.append(admin)
            created = admin.maintenance.server.send(
                CreateDatabaseOperation(DatabaseRecord(database), replication_factor=3)
            )
            assert created.name == database
            assert sorted(created.nodes_added_to) == sorted(n.url for n in nodes), created.nodes_added_to
            _wait(
                "every node to list the database's three members",
                10,
                lambda: all(sorted(_database_nodes(node, database)) == list(TAGS) for node in nodes) or None,
                nodes,
            )

            store = DocumentStore(urls=[node.url for node in nodes], database=database)
            store.initialize()
            stores.append(store)
            writer = Writer(store, node_tags={node.url: node.tag for node in nodes})
            for _ in range(BATCHES_BEFORE_KILL):
                writer.write_batch("before")

            # The node the client writes to. With a correct node selector that is the first node
            # of /topology, the database group's leader, and every write goes there. The 7.2.7
            # client's selector is broken (see README.md, "Cluster failover"): it sends requests
            # to the three nodes in turn, so a third of the writes go to the leader directly and
            # the rest through a follower, which forwards them to it. Either way the leader is
            # the node every write goes through, and killing it is the hardest case: the group
            # must elect a new leader before any write can commit again.
            def leader_agreed():
                views = [_database_nodes(node, database) for node in nodes]
                return True if all(view == views[0] for view in views) else views

            _wait("the nodes to agree on the group's leader", 10, leader_agreed, nodes)
            victim = by_tag[_database_nodes(a, database)[0]]
            assert victim.tag in writer.sent_to, (
                f"the client never wrote to the group's leader {victim.tag}: {sorted(writer.sent_to)}"
            )
            survivors = [node for node in nodes if node is not victim]

            # Kill it from another thread while the writer is in the middle of its loop, so the
            # kill lands at an arbitrary point, usually while a save_changes is in flight.
            killed_at: list[float] = []

            def killer():
                time.sleep(0.005)
                writer.retry = True
                killed_at.append(time.monotonic())
                victim.kill()

            thread = threading.Thread(target=killer, daemon=True)
            thread.start()
            while not killed_at:
                writer.write_batch("around-kill")
            thread.join()
            kill_time = killed_at[0]
            for _ in range(BATCHES_AFTER_KILL):
                writer.write_batch("after-kill")
            writer.retry = False
            acks = sorted(start + took for start, took, _ in writer.batch_seconds)
            first_ack_after_kill = min(at for at in acks if at > kill_time)
            last_ack_before_kill = max(at for at in acks if at <= kill_time)
            # The longest time without an acknowledged write, from the last one before the kill.
            pause = max(later - earlier for earlier, later in zip(acks, acks[1:]) if later > kill_time)
            slowest = max(took for start, took, _ in writer.batch_seconds if start + took > kill_time)
            sent_before_kill = sorted({tag for at, tag in writer.requests if at <= kill_time})
            tried_victim = sum(1 for at, tag in writer.requests if at > kill_time and tag == victim.tag)

            # Every acknowledged write is on both survivors (read from each node itself), and
            # the two hold the same documents with the same change vectors.
            acknowledged = set(writer.acknowledged)

            def survivors_hold_everything():
                views = [_contents(node, database) for node in survivors]
                missing = {node.tag: sorted(acknowledged - set(v))[:5] for node, v in zip(survivors, views)}
                if any(missing.values()) or views[0] != views[1]:
                    return {"missing": missing, "counts": [len(view) for view in views]}
                return True

            _wait("the survivors to hold every acknowledged write", 10, survivors_hold_everything, nodes)
            survivor_view = _contents(survivors[0], database)

            # The killed node returns (same port, data directory and tag) and catches up.
            returned_at = time.monotonic()
            victim.start()

            def victim_caught_up():
                view = _contents(victim, database)
                if view != survivor_view:
                    return {
                        "count": len(view),
                        "expected": len(survivor_view),
                        "missing": sorted(acknowledged - set(view))[:5],
                    }
                return True

            _wait("the returned node to catch up", CATCH_UP_LIMIT, victim_caught_up, nodes)
            catch_up = time.monotonic() - returned_at

            # And it takes part again: new writes reach all three.
            for _ in range(BATCHES_AFTER_RETURN):
                writer.write_batch("after-return")
            acknowledged = set(writer.acknowledged)

            def all_identical():
                views = [_contents(node, database) for node in nodes]
                missing = {node.tag: sorted(acknowledged - set(view))[:5] for node, view in zip(nodes, views)}
                if any(missing.values()) or any(view != views[0] for view in views):
                    return {"missing": missing, "counts": [len(view) for view in views]}
                return True

            _wait("all three nodes to hold the same documents", 10, all_identical, nodes)

            # What happened, for the log (pytest -s shows it).
            failovers = [what for at, what in writer.failed if at > kill_time]
            events = sorted(
                [(at, f"sent to {tag}") for at, tag in writer.requests]
                + [(at, f"failed {what}") for at, what in writer.failed]
                + [(at, "acknowledged") for at in acks]
            )
            timeline = [
                f"+{at - kill_time:.2f} {what}" for at, what in events if kill_time < at <= first_ack_after_kill
            ]
            errors = f": {' | '.join(writer.errors)}" if writer.errors else ""
            print(
                f"\ncluster failover: killed {victim.tag}, the group's leader; bulk_docs sent to {sent_before_kill} "
                f"before the kill; {len(writer.acknowledged)} documents acknowledged in {writer.next_batch} batches; "
                f"last ack {kill_time - last_ack_before_kill:.3f} s before the kill, first ack "
                f"{first_ack_after_kill - kill_time:.2f} s after it; writes paused {pause:.2f} s; slowest batch "
                f"after the kill {slowest:.2f} s; {tried_victim} bulk_docs sent to the dead node after the kill; "
                f"the client failed over {len(failovers)} time(s) ({', '.join(sorted(set(failovers)))}); "
                f"save_changes raised {len(writer.errors)} time(s){errors}; the returned node caught up in "
                f"{catch_up:.2f} s ({len(survivor_view)} documents); the test took "
                f"{time.monotonic() - test_started:.1f} s; from the kill to the first ack after it: "
                f"{', '.join(timeline)}"
            )
        finally:
            for store_ in stores:
                try:
                    store_.close()
                except Exception:  # noqa: BLE001 - closing must not hide the test's own failure
                    pass
            for node in nodes:
                node.kill()
