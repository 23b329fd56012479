// The Changes API and lazy operations with the official Node.js client (npm `ravendb`).
// Every change is made by ANOTHER DocumentStore than the one watching, so it can only arrive
// through the server's `/changes` WebSocket.
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const crypto = require("node:crypto");
const { DocumentStore, CreateDatabaseOperation, DeleteDatabasesOperation } = require("ravendb");

const url = process.env.CORVID_URL;
if (!url) {
    throw new Error("CORVID_URL is not set (e.g. CORVID_URL=http://127.0.0.1:8080)");
}
const database = `node_changes_${crypto.randomBytes(4).toString("hex")}`;
const opened = [];

function openStore() {
    const store = new DocumentStore(url, database);
    store.initialize();
    opened.push(store);
    return store;
}

/** Collects the observable's changes; resolves once the server confirmed the watch. */
async function watch(observable) {
    const received = [];
    const waiters = [];
    observable.on("data", change => {
        received.push(change);
        while (waiters.length && received.length >= waiters[0].count) {
            waiters.shift().resolve();
        }
    });
    observable.on("error", error => waiters.forEach(it => it.reject(error)));
    await observable.ensureSubscribedNow();
    return {
        received,
        /** Waits until `count` changes arrived in all, failing after 10 s. */
        async until(count) {
            if (received.length >= count) return received;
            await new Promise((resolve, reject) => {
                const timer = setTimeout(
                    () => reject(new Error(`only ${received.length} of ${count} changes arrived`)),
                    10_000);
                waiters.push({ count, resolve: () => { clearTimeout(timer); resolve(); }, reject });
            });
            return received;
        },
    };
}

async function storeDoc(store, id, doc) {
    const session = store.openSession();
    await session.store(doc, id);
    await session.saveChanges();
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

describe("changes", () => {
    before(async () => {
        const admin = new DocumentStore(url);
        admin.initialize();
        await admin.maintenance.server.send(new CreateDatabaseOperation({ databaseName: database }));
        admin.dispose();
    });

    after(async () => {
        for (const store of opened) store.dispose();
        const admin = new DocumentStore(url);
        admin.initialize();
        await admin.maintenance.server.send(
            new DeleteDatabasesOperation({ databaseNames: [database], hardDelete: true }));
        admin.dispose();
    });

    it("forDocument sees puts and deletes made by another store", async () => {
        const watcher = openStore();
        const changes = watcher.changes();
        await changes.ensureConnectedNow();
        const doc = await watch(changes.forDocument("people/1"));

        const writer = openStore();
        await storeDoc(writer, "people/2", { name: "Bob", "@metadata": { "@collection": "People" } });
        await storeDoc(writer, "people/1", { name: "Ann", "@metadata": { "@collection": "People" } });
        let received = await doc.until(1);
        assert.equal(received[0].type, "Put");
        assert.equal(received[0].id, "people/1");
        assert.equal(received[0].collectionName, "People");
        assert.match(received[0].changeVector, /^A:\d+-/);

        const session = writer.openSession();
        await session.delete("people/1");
        await session.saveChanges();
        received = await doc.until(2);
        assert.deepEqual(received.map(it => [it.type, it.id]), [["Put", "people/1"], ["Delete", "people/1"]]);
    });

    it("forAllDocuments, forDocumentsInCollection and forDocumentsStartingWith", async () => {
        const watcher = openStore();
        const changes = watcher.changes();
        await changes.ensureConnectedNow();
        const all = await watch(changes.forAllDocuments());
        const collection = await watch(changes.forDocumentsInCollection("Orders"));
        const prefix = await watch(changes.forDocumentsStartingWith("cats/"));

        const writer = openStore();
        await storeDoc(writer, "orders/1", { total: 5, "@metadata": { "@collection": "Orders" } });
        await storeDoc(writer, "cats/1", { name: "Tom", "@metadata": { "@collection": "Animals" } });
        await storeDoc(writer, "dogs/1", { name: "Rex", "@metadata": { "@collection": "Animals" } });

        assert.deepEqual((await all.until(3)).map(it => it.id), ["orders/1", "cats/1", "dogs/1"]);
        assert.deepEqual((await collection.until(1)).map(it => it.id), ["orders/1"]);
        assert.deepEqual((await prefix.until(1)).map(it => it.id), ["cats/1"]);
        await sleep(300);
        assert.equal(collection.received.length, 1);
        assert.equal(prefix.received.length, 1);
    });

    it("an app with no error handler on changes() does not crash", () => {
        // A separate process: an `error` event nobody listens to would kill it.
        const script = `
            const { DocumentStore } = require("ravendb");
            (async () => {
                const watcher = new DocumentStore(${JSON.stringify(url)}, ${JSON.stringify(database)});
                watcher.initialize();
                const writer = new DocumentStore(${JSON.stringify(url)}, ${JSON.stringify(database)});
                writer.initialize();
                const changes = watcher.changes();
                const arrived = new Promise(resolve => changes.forDocument("apps/1").on("data", resolve));
                await changes.ensureConnectedNow();
                await new Promise(resolve => setTimeout(resolve, 300));
                const session = writer.openSession();
                await session.store({ name: "app" }, "apps/1");
                await session.saveChanges();
                const change = await arrived;
                console.log("arrived " + change.id);
                watcher.dispose();
                writer.dispose();
            })();`;
        const run = spawnSync(process.execPath, ["-e", script], {
            env: process.env,
            encoding: "utf8",
            timeout: 30_000,
        });
        assert.equal(run.status, 0, `exit ${run.status}: ${run.stderr}`);
        assert.match(run.stdout, /arrived apps\/1/);
    });

    it("lazy loads and a lazy query go in one multi_get", async () => {
        const store = openStore();
        await storeDoc(store, "books/1", { title: "Dune", "@metadata": { "@collection": "Books" } });
        await storeDoc(store, "books/2", { title: "Emma", "@metadata": { "@collection": "Books" } });
        const executor = store.getRequestExecutor();
        const session = store.openSession();
        const lazyBook = session.advanced.lazily.load("books/1");
        const lazyBooks = session.query({ collection: "Books" }).lazily();
        const before = executor.numberOfServerRequests;
        await session.advanced.eagerly.executeAllPendingLazyOperations();
        assert.equal(executor.numberOfServerRequests, before + 1);
        assert.equal((await lazyBook.getValue()).title, "Dune");
        const titles = (await lazyBooks.getValue()).map(it => it.title).sort();
        assert.deepEqual(titles, ["Dune", "Emma"]);
    });
});
