// Patching with the official Node.js client: session patch / increment, PatchOperation,
// PatchByQueryOperation and DeleteByQueryOperation with waitForCompletion().
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const {
    DocumentStore,
    CreateDatabaseOperation,
    DeleteDatabasesOperation,
    PatchOperation,
    PatchRequest,
    PatchByQueryOperation,
    DeleteByQueryOperation,
    IndexQuery,
} = require("ravendb");

const url = process.env.CORVID_URL;
const database = `node_patch_${crypto.randomBytes(4).toString("hex")}`;
let store;

class User {
    constructor(name, age) {
        this.name = name;
        this.age = age;
        this.tags = [];
    }
}

before(async () => {
    assert.ok(url, "CORVID_URL must be set");
    store = new DocumentStore(url, database);
    store.conventions.findCollectionNameForObjectLiteral = () => "Users";
    store.initialize();
    await store.maintenance.server.send(new CreateDatabaseOperation({ databaseName: database }));
});

after(async () => {
    try {
        await store.maintenance.server.send(
            new DeleteDatabasesOperation({ databaseNames: [database], hardDelete: true }));
    } finally {
        store.dispose();
    }
});

async function storeUsers(prefix, count) {
    const session = store.openSession();
    for (let idx = 0; idx < count; idx++) {
        await session.store(new User(`user${idx}`, idx), `${prefix}${idx}`);
    }
    await session.saveChanges();
}

test("session.patch and session.increment", async () => {
    await storeUsers("sp/", 1);
    {
        const session = store.openSession();
        const user = await session.load("sp/0", User);
        session.advanced.patch(user, "name", "Patched");
        session.advanced.increment(user, "age", 5);
        await session.saveChanges();
    }
    {
        const session = store.openSession();
        session.advanced.increment("sp/0", "age", 10);
        session.advanced.patch("sp/0", "tags", ["a", "b"]);
        session.advanced.patch("sp/0", "extra", { a: 0 });
        await session.saveChanges();
    }
    {
        const session = store.openSession();
        session.advanced.patchArray("sp/0", "tags", (array) => array.push("c", "d").removeAt(0));
        session.advanced.patchObject("sp/0", "extra", (map) => map.set("k", 1));
        await session.saveChanges();
    }
    const session = store.openSession();
    const loaded = await session.load("sp/0", User);
    assert.equal(loaded.name, "Patched");
    assert.equal(loaded.age, 15);
    assert.deepEqual(loaded.tags, ["b", "c", "d"]);
    assert.deepEqual(loaded.extra, { a: 0, k: 1 });
});

test("session.addOrIncrement creates, then increments", async () => {
    for (let round = 0; round < 2; round++) {
        const session = store.openSession();
        session.advanced.addOrIncrement("ai/1", new User("new", 1), "age", 3);
        await session.saveChanges();
    }
    const session = store.openSession();
    const loaded = await session.load("ai/1", User);
    assert.equal(loaded.name, "new");
    assert.equal(loaded.age, 4);
});

test("PatchOperation statuses", async () => {
    await storeUsers("po/", 1);
    const patch = new PatchRequest();
    patch.script = "this.age += args.by; this.name = args.name;";
    patch.values = { by: 7, name: "Op" };
    const result = await store.operations.send(new PatchOperation("po/0", null, patch), null, User);
    assert.equal(result.status, "Patched");
    assert.equal(result.document.age, 7);
    assert.equal(result.document.name, "Op");

    const same = PatchRequest.forScript("this.age = this.age;");
    assert.equal((await store.operations.send(new PatchOperation("po/0", null, same))).status, "NotModified");
    const missing = await store.operations.send(new PatchOperation("po/missing", null, same));
    assert.equal(missing.status, "DocumentDoesNotExist");

    const ifMissing = PatchRequest.forScript("this.name = 'made'; this['@metadata'] = {'@collection': 'Users'};");
    const created = await store.operations.send(new PatchOperation("po/new", null, same, ifMissing));
    assert.equal(created.status, "Created");

    const stale = new PatchOperation("po/0", "A:1-stale", PatchRequest.forScript("this.age = 99;"));
    await assert.rejects(store.operations.send(stale), (error) => error.name === "ConcurrencyException");
    const skipped = new PatchOperation("po/0", "A:1-stale", PatchRequest.forScript("this.age = 99;"), null, true);
    assert.equal((await store.operations.send(skipped)).status, "NotModified");

    const looping = new PatchOperation("po/0", null, PatchRequest.forScript("while (true) {}"));
    await assert.rejects(store.operations.send(looping), /time budget/);
    const session = store.openSession();
    assert.equal((await session.load("po/0", User)).age, 7);
});

test("PatchByQueryOperation and waitForCompletion", async () => {
    await storeUsers("pq/", 40);
    const query = new IndexQuery();
    query.query = "from Users where name = $n update { this.age = 1000; }";
    query.queryParameters = { n: "user7" };
    const operation = await store.operations.send(new PatchByQueryOperation(query));
    await operation.waitForCompletion();
    const all = await store.operations.send(new PatchByQueryOperation("from Users update { this.seen = true; }"));
    await all.waitForCompletion();
    const session = store.openSession();
    assert.equal((await session.load("pq/7", User)).age, 1000);
    assert.equal((await session.load("pq/8", User)).age, 8);
    const seen = await session.advanced.rawQuery("from Users where seen = true").all();
    assert.ok(seen.length >= 40);

    const failing = await store.operations.send(
        new PatchByQueryOperation("from Users update { throw new Error('bad doc'); }"));
    await assert.rejects(failing.waitForCompletion(), /bad doc/);
});

test("DeleteByQueryOperation and waitForCompletion", async () => {
    await storeUsers("dq/", 10);
    const query = new IndexQuery();
    query.query = "from Users where name = $n";
    query.queryParameters = { n: "user3" };
    const operation = await store.operations.send(new DeleteByQueryOperation(query));
    await operation.waitForCompletion();
    let session = store.openSession();
    assert.equal(await session.load("dq/3", User), null);
    assert.ok(await session.load("dq/4", User));

    const everything = await store.operations.send(new DeleteByQueryOperation("from Users"));
    await everything.waitForCompletion();
    session = store.openSession();
    assert.equal((await session.query({ collection: "Users" }).all()).length, 0);
});
