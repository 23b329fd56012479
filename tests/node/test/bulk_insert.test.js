"use strict";
// Bulk insert with the official Node.js client: store.bulkInsert() streams every stored entity
// in one POST /bulk_insert?id= request (an operation id from /operations/next-operation-id);
// a failed insert is explained by GET /operations/state?id=.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const {
    DocumentStore,
    CreateDatabaseOperation,
    DeleteDatabasesOperation,
    GetCollectionStatisticsOperation,
} = require("ravendb");

class Person {
    constructor(name, age, tags) {
        this.name = name;
        this.age = age;
        this.tags = tags;
    }
}

async function countOf(store, collection) {
    const stats = await store.maintenance.send(new GetCollectionStatisticsOperation());
    return stats.collections[collection] ?? 0;
}

describe("bulk insert", () => {
    const url = process.env.CORVID_URL;
    const database = `node_bulk_insert_${crypto.randomBytes(4).toString("hex")}`;
    let store;

    before(async () => {
        assert.ok(url, "CORVID_URL is not set");
        store = new DocumentStore(url, database);
        store.conventions.registerEntityType(Person);
        store.initialize();
        await store.maintenance.server.send(new CreateDatabaseOperation({ databaseName: database }));
    });

    after(async () => {
        await store.maintenance.server.send(new DeleteDatabasesOperation({ databaseNames: [database], hardDelete: true }));
        store.dispose();
    });

    it("inserts 100,000 documents that are then counted and loaded", async () => {
        const nDocs = 100_000;
        const bulkInsert = store.bulkInsert();
        for (let idx = 0; idx < nDocs; idx++) {
            await bulkInsert.store(new Person(`person ${idx}`, idx % 90, ["a", "b"]), `people/${idx}`);
        }
        await bulkInsert.finish();

        assert.equal(await countOf(store, "People"), nDocs);
        const session = store.openSession();
        const loaded = await session.load(["people/0", "people/1", "people/49999", "people/99999"], Person);
        for (const [id, person] of Object.entries(loaded)) {
            assert.ok(person instanceof Person, `${id} missing`);
            const idx = Number(id.split("/")[1]);
            assert.equal(person.name, `person ${idx}`);
            assert.equal(person.age, idx % 90);
            assert.deepEqual(person.tags, ["a", "b"]);
            assert.equal(session.advanced.getMetadataFor(person)["@collection"], "People");
            assert.equal(session.advanced.getMetadataFor(person)["Raven-Node-Type"], "Person");
        }
    });

    it("keeps given metadata, compresses, and stores attachments", async () => {
        const bulkInsert = store.bulkInsert({ useCompression: true });
        await bulkInsert.store(new Person("Ann", 41), "employees/ann", {
            "@collection": "Employees",
            department: "Sales",
        });
        for (let idx = 0; idx < 1000; idx++) {
            await bulkInsert.store(new Person(`zipped ${idx}`, idx), `zipped/${idx}`);
        }
        await bulkInsert.attachmentsFor("zipped/7").store("note.txt", Buffer.from("seven ] , ["), "text/plain");
        await bulkInsert.finish();

        assert.equal(await countOf(store, "Employees"), 1);
        const session = store.openSession();
        const ann = await session.load("employees/ann", Person);
        assert.equal(ann.name, "Ann");
        const metadata = session.advanced.getMetadataFor(ann);
        assert.equal(metadata["@collection"], "Employees");
        assert.equal(metadata["department"], "Sales");
        assert.equal((await session.load("zipped/999", Person)).name, "zipped 999");
        const attachment = await session.advanced.attachments.get("zipped/7", "note.txt");
        try {
            assert.equal(attachment.details.contentType, "text/plain");
            const chunks = [];
            for await (const chunk of attachment.data) {
                chunks.push(chunk);
            }
            assert.equal(Buffer.concat(chunks).toString(), "seven ] , [");
        } finally {
            attachment.dispose();
        }
    });

    it("fails with the server's error when a document cannot be written", async () => {
        const session = store.openSession();
        await session.store(new Person("already"), "people/taken");
        await session.saveChanges();

        const bulkInsert = store.bulkInsert();
        await bulkInsert.store(new Person("clash"), "people/taken", { "@collection": "Robots" });
        await assert.rejects(bulkInsert.finish(), (error) => {
            assert.equal(error.name, "BulkInsertAbortedException");
            assert.match(error.message, /people\/taken/);
            return true;
        });
        const reader = store.openSession();
        assert.equal((await reader.load("people/taken", Person)).name, "already");
    });
});
