"use strict";
// Documents and sessions with the official Node.js client: store, load (one and many),
// delete, metadata, change tracking, evict, exists, loadStartingWith, HiLo ids and optimistic
// concurrency.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const corvid = require("../lib/corvid");

class User {
    constructor(name, age) {
        this.name = name;
        this.age = age;
    }
}

class Company {
    constructor(name) {
        this.name = name;
    }
}

describe("documents and sessions", () => {
    let db;

    before(async () => {
        db = await corvid.openDatabase("documents");
        db.store.conventions.registerEntityType(User);
        db.store.conventions.registerEntityType(Company);
    });

    after(async () => {
        await db.close();
    });

    it("stores, loads and deletes a document, with its metadata", async () => {
        const session = db.store.openSession();
        const alice = new User("Alice", 30);
        await session.store(alice, "users/crud-1");
        session.advanced.getMetadataFor(alice)["department"] = "sales";
        await session.saveChanges();
        const changeVector = session.advanced.getChangeVectorFor(alice);
        assert.match(changeVector, /^A:\d+-/);

        const reader = db.store.openSession();
        const loaded = await reader.load("users/crud-1", User);
        assert.ok(loaded instanceof User);
        assert.equal(loaded.name, "Alice");
        assert.equal(loaded.age, 30);
        const metadata = reader.advanced.getMetadataFor(loaded);
        assert.equal(metadata["@collection"], "Users");
        assert.equal(metadata["@id"], "users/crud-1");
        assert.equal(metadata["department"], "sales");
        assert.equal(metadata["Raven-Node-Type"], "User");
        assert.equal(reader.advanced.getChangeVectorFor(loaded), changeVector);

        const deleter = db.store.openSession();
        await deleter.delete("users/crud-1");
        await deleter.saveChanges();
        assert.equal(await db.store.openSession().load("users/crud-1"), null);
    });

    it("loads many documents at once, missing ones as null", async () => {
        const session = db.store.openSession();
        for (let n = 1; n <= 3; n++) {
            await session.store(new User(`user ${n}`, n), `users/many-${n}`);
        }
        await session.saveChanges();

        const reader = db.store.openSession();
        const loaded = await reader.load(["users/many-1", "users/many-3", "users/many-404"], User);
        assert.deepEqual(Object.keys(loaded).sort(), ["users/many-1", "users/many-3", "users/many-404"]);
        assert.equal(loaded["users/many-1"].name, "user 1");
        assert.equal(loaded["users/many-3"].age, 3);
        assert.equal(loaded["users/many-404"], null);
        // One request for all of them.
        assert.equal(reader.advanced.numberOfRequests, 1);
    });

    it("tracks changes of loaded documents and saves only what changed", async () => {
        const writer = db.store.openSession();
        await writer.store(new User("Bob", 40), "users/tracked");
        await writer.store(new User("Carol", 50), "users/untouched");
        await writer.saveChanges();

        const session = db.store.openSession();
        const bob = await session.load("users/tracked", User);
        const carol = await session.load("users/untouched", User);
        const carolVector = session.advanced.getChangeVectorFor(carol);
        // The same session hands out the same object, without another request.
        assert.equal(await session.load("users/tracked", User), bob);
        assert.equal(session.advanced.numberOfRequests, 2);
        assert.equal(session.advanced.hasChanges(), false);

        bob.age = 41;
        assert.equal(session.advanced.hasChanged(bob), true);
        assert.equal(session.advanced.hasChanged(carol), false);
        await session.saveChanges();

        const reader = db.store.openSession();
        assert.equal((await reader.load("users/tracked", User)).age, 41);
        const unchanged = await reader.load("users/untouched", User);
        assert.equal(reader.advanced.getChangeVectorFor(unchanged), carolVector, "an unchanged document was written");
    });

    it("evicts a document so the next load reads it from the server", async () => {
        const writer = db.store.openSession();
        await writer.store(new User("Dave", 20), "users/evicted");
        await writer.saveChanges();

        const session = db.store.openSession();
        const first = await session.load("users/evicted", User);
        first.age = 99; // never saved
        session.advanced.evict(first);
        assert.equal(session.advanced.isLoaded("users/evicted"), false);
        const again = await session.load("users/evicted", User);
        assert.notEqual(again, first);
        assert.equal(again.age, 20);
        assert.equal(session.advanced.numberOfRequests, 2);
        await session.saveChanges();
        assert.equal((await db.store.openSession().load("users/evicted", User)).age, 20);
    });

    it("tells whether a document exists", async () => {
        const writer = db.store.openSession();
        await writer.store(new User("Erin", 33), "users/exists");
        await writer.saveChanges();

        const session = db.store.openSession();
        assert.equal(await session.advanced.exists("users/exists"), true);
        assert.equal(await session.advanced.exists("users/does-not-exist"), false);
    });

    it("loads the documents whose ids start with a prefix, paged", async () => {
        const writer = db.store.openSession();
        for (const id of ["prefix/a/1", "prefix/a/2", "prefix/a/3", "prefix/b/1"]) {
            await writer.store(new Company(id), id);
        }
        await writer.saveChanges();

        const session = db.store.openSession();
        const all = await session.advanced.loadStartingWith("prefix/a/", { documentType: Company });
        assert.deepEqual(all.map(it => it.name), ["prefix/a/1", "prefix/a/2", "prefix/a/3"]);
        assert.ok(all.every(it => it instanceof Company));
        const page = await session.advanced.loadStartingWith("prefix/a/", { start: 1, pageSize: 1 });
        assert.deepEqual(page.map(it => it.name), ["prefix/a/2"]);
        const none = await session.advanced.loadStartingWith("prefix/zzz/");
        assert.deepEqual(none, []);
    });

    it("gives new documents HiLo ids from the server's ranges", async () => {
        const session = db.store.openSession();
        const users = [new User("H1", 1), new User("H2", 2), new User("H3", 3)];
        for (const user of users) {
            await session.store(user);
        }
        const companyOfSession = new Company("Hilo Inc");
        await session.store(companyOfSession);
        await session.saveChanges();

        const ids = users.map(user => session.advanced.getDocumentId(user));
        for (const id of ids) {
            assert.match(id, /^users\/\d+-A$/);
        }
        const numbers = ids.map(id => Number(id.slice("users/".length, -"-A".length)));
        assert.deepEqual(numbers, [numbers[0], numbers[0] + 1, numbers[0] + 2]);
        assert.match(session.advanced.getDocumentId(companyOfSession), /^companies\/\d+-A$/);

        // A second store gets a range of its own: no id handed out twice.
        const other = new (require("ravendb").DocumentStore)(corvid.serverUrl(), db.name);
        other.initialize();
        try {
            const otherSession = other.openSession();
            const user = new User("H4", 4);
            await otherSession.store(user);
            await otherSession.saveChanges();
            const otherId = otherSession.advanced.getDocumentId(user);
            assert.match(otherId, /^users\/\d+-A$/);
            assert.ok(!ids.includes(otherId), `${otherId} was handed out twice`);
        } finally {
            other.dispose();
        }
        const loaded = await db.store.openSession().load(ids, User);
        assert.deepEqual(ids.map(id => loaded[id].name), ["H1", "H2", "H3"]);
    });

    it("rejects a stale write with ConcurrencyException under optimistic concurrency", async () => {
        const writer = db.store.openSession();
        await writer.store(new User("Frank", 60), "users/occ");
        await writer.saveChanges();

        const first = db.store.openSession();
        first.advanced.useOptimisticConcurrency = true;
        const second = db.store.openSession();
        second.advanced.useOptimisticConcurrency = true;
        const mine = await first.load("users/occ", User);
        const theirs = await second.load("users/occ", User);

        theirs.age = 61;
        await second.saveChanges();
        mine.age = 62;
        await assert.rejects(first.saveChanges(), error => error.name === "ConcurrencyException");
        assert.equal((await db.store.openSession().load("users/occ", User)).age, 61);

        // Under optimistic concurrency a new entity must not overwrite an existing document.
        const creator = db.store.openSession();
        creator.advanced.useOptimisticConcurrency = true;
        await creator.store(new User("Ghost", 1), "users/occ");
        await assert.rejects(creator.saveChanges(), error => error.name === "ConcurrencyException");
        assert.equal((await db.store.openSession().load("users/occ", User)).name, "Frank");

        // An explicit change vector is checked, and the right one passes.
        const current = db.store.openSession();
        const loaded = await current.load("users/occ", User);
        const explicit = db.store.openSession();
        await explicit.store(new User("Frank", 70), "users/occ", { changeVector: current.advanced.getChangeVectorFor(loaded) });
        await explicit.saveChanges();
        const stale = db.store.openSession();
        await stale.store(new User("Frank", 80), "users/occ", { changeVector: current.advanced.getChangeVectorFor(loaded) });
        await assert.rejects(stale.saveChanges(), error => error.name === "ConcurrencyException");
        assert.equal((await db.store.openSession().load("users/occ", User)).age, 70);
    });
});
