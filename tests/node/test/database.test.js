"use strict";
// Database operations with the official Node.js client: create, get the record, statistics,
// delete, the "ensure the database exists" start-up pattern run twice, and the clean error
// every unsupported feature answers.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const {
    DocumentStore,
    GetDatabaseRecordOperation,
    GetStatisticsOperation,
    GetDatabaseNamesOperation,
    GetCollectionStatisticsOperation,
    PutIndexesOperation,
    GetCountersOperation,
    GetTimeSeriesOperation,
    GetRevisionsOperation,
    GetCompareExchangeValueOperation,
} = require("ravendb");
const corvid = require("../lib/corvid");

describe("database operations", () => {
    let admin;

    before(() => {
        admin = corvid.openAdminStore();
    });

    after(() => {
        admin.dispose();
    });

    it("creates a database, reads its record and statistics, and hard-deletes it", async () => {
        const name = corvid.uniqueDatabaseName("database");
        const created = await corvid.createDatabase(admin, name);
        assert.equal(created.name, name);
        try {
            const record = await admin.maintenance.server.send(new GetDatabaseRecordOperation(name));
            assert.ok(record, "no record for a database just created");
            assert.equal(record.databaseName, name);
            assert.equal(record.disabled, false);
            assert.deepEqual(record.topology.members, ["A"]);
            assert.equal(typeof record.etag, "number");
            assert.deepEqual(record.settings, {});

            const store = new DocumentStore(corvid.serverUrl(), name);
            store.initialize();
            try {
                const empty = await store.maintenance.send(new GetStatisticsOperation());
                assert.equal(empty.countOfDocuments, 0);
                assert.equal(empty.lastDocEtag, 0);
                const session = store.openSession();
                await session.store({ name: "Alice" }, "users/1");
                await session.store({ name: "Bob" }, "users/2");
                await session.saveChanges();

                const collections = await store.maintenance.send(new GetCollectionStatisticsOperation());
                assert.equal(collections.countOfDocuments, 2);
                assert.deepEqual(collections.collections, { "@empty": 2 });

                const stats = await store.maintenance.send(new GetStatisticsOperation());
                assert.equal(stats.countOfDocuments, 2);
                assert.equal(stats.countOfIndexes, 0);
                assert.deepEqual(stats.indexes, []);
                assert.ok(stats.lastDocEtag >= 2, `lastDocEtag ${stats.lastDocEtag}`);
                assert.ok(stats.databaseChangeVector.includes(`:${stats.lastDocEtag}-`),
                    `change vector ${stats.databaseChangeVector} does not end at etag ${stats.lastDocEtag}`);
                assert.equal(typeof stats.databaseId, "string");
                assert.equal(stats.is64Bit, true);
                // The redb file really has a size, and the humane form matches it.
                assert.ok(stats.sizeOnDisk.sizeInBytes > 0, JSON.stringify(stats.sizeOnDisk));
                assert.match(stats.sizeOnDisk.humaneSize, /^\d+(\.\d{1,2})? (Bytes|KBytes|MBytes|GBytes)$/);
                assert.equal(stats.tempBuffersSizeOnDisk.sizeInBytes, 0);
            } finally {
                store.dispose();
            }
        } finally {
            await corvid.hardDeleteDatabase(admin, name);
        }
        // The client answers a 404 with no result (undefined).
        assert.equal(await admin.maintenance.server.send(new GetDatabaseRecordOperation(name)), undefined);
        const names = await admin.maintenance.server.send(new GetDatabaseNamesOperation(0, 1000));
        assert.ok(!names.includes(name), `${name} is still listed: ${names}`);
    });

    it("answers no record for a database that does not exist", async () => {
        const record = await admin.maintenance.server.send(
            new GetDatabaseRecordOperation(corvid.uniqueDatabaseName("absent")));
        assert.equal(record, undefined);
    });

    it("raises DatabaseDoesNotExistException for the statistics of a missing database", async () => {
        const name = corvid.uniqueDatabaseName("absent");
        await assert.rejects(
            admin.maintenance.forDatabase(name).send(new GetStatisticsOperation()),
            error => error.name === "DatabaseDoesNotExistException" && error.message.includes(name));
    });
});

/**
 * What an application does at start-up: ensure its database exists (the common pattern with
 * GetDatabaseRecordOperation, or with GetStatisticsOperation and DatabaseDoesNotExistException),
 * then use it. Returns the ids of the "start" documents found after writing its own.
 */
async function startApplication(name, pattern, startNumber) {
    const store = new DocumentStore(corvid.serverUrl(), name);
    store.initialize();
    try {
        if (pattern === "record") {
            const record = await store.maintenance.server.send(new GetDatabaseRecordOperation(name));
            if (!record) {
                await corvid.createDatabase(store, name);
            }
        } else {
            try {
                await store.maintenance.forDatabase(name).send(new GetStatisticsOperation());
            } catch (error) {
                if (error.name !== "DatabaseDoesNotExistException") {
                    throw error;
                }
                await corvid.createDatabase(store, name);
            }
        }
        const session = store.openSession();
        await session.store({ number: startNumber }, `starts/${startNumber}`);
        await session.saveChanges();
        const found = await store.openSession().advanced.loadStartingWith("starts/");
        return found.map(it => it.number).sort();
    } finally {
        store.dispose();
    }
}

for (const pattern of ["record", "statistics"]) {
    describe(`an application ensuring its database exists (${pattern} pattern)`, () => {
        const name = corvid.uniqueDatabaseName(`ensure_${pattern}`);
        let admin;

        before(() => {
            admin = corvid.openAdminStore();
        });

        after(async () => {
            try {
                await corvid.hardDeleteDatabase(admin, name);
            } finally {
                admin.dispose();
            }
        });

        it("creates the database on the first start and reuses it on the second", async () => {
            assert.deepEqual(await startApplication(name, pattern, 1), [1]);
            assert.deepEqual(await startApplication(name, pattern, 2), [1, 2]);
        });
    });
}

describe("unsupported features", () => {
    let db;

    before(async () => {
        db = await corvid.openDatabase("unsupported");
        const session = db.store.openSession();
        await session.store({ name: "Alice" }, "users/1");
        await session.saveChanges();
    });

    after(async () => {
        await db.close();
    });

    /** The client raises NotSupportedException with a message naming the feature. */
    async function assertNotSupported(promise, feature) {
        await assert.rejects(promise, error => {
            assert.equal(error.name, "NotSupportedException", `${error.name}: ${error.message}`);
            assert.ok(error.message.includes(`Corvid does not support ${feature}`), error.message);
            return true;
        });
    }

    it("static indexes", async () => {
        const definition = { name: "Users/ByName", maps: new Set(["from u in docs.Users select new { u.name }"]) };
        await assertNotSupported(db.store.maintenance.send(new PutIndexesOperation(definition)), "static indexes");
    });

    it("counters", async () => {
        await assertNotSupported(db.store.operations.send(new GetCountersOperation("users/1", "likes")), "counters");
    });

    it("time series", async () => {
        await assertNotSupported(
            db.store.operations.send(new GetTimeSeriesOperation("users/1", "HeartRate")), "time series");
    });

    it("revisions", async () => {
        await assertNotSupported(
            db.store.operations.send(new GetRevisionsOperation("users/1")), "revisions");
    });

    it("subscriptions", async () => {
        await assertNotSupported(db.store.subscriptions.create({ query: "from Users" }), "subscriptions");
    });

    it("compare exchange", async () => {
        await assertNotSupported(
            db.store.operations.send(new GetCompareExchangeValueOperation("emails/alice")), "compare exchange");
    });
});
