// Queries with the official RavenDB Node.js client (npm ravendb 7.2.x) against CORVID_URL:
// every filter form, typed ordering, projections, includes, paging, statistics, raw RQL and
// streaming. Self-contained: its own database, created in before() and hard-deleted in after().
"use strict";

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { DocumentStore, CreateDatabaseOperation, DeleteDatabasesOperation } = require("ravendb");

const url = process.env.CORVID_URL;
const database = `node_queries_${crypto.randomBytes(4).toString("hex")}`;

class Person {
    constructor(name, age, tags, city, friend, bio) {
        this.name = name;
        this.age = age;
        this.tags = tags;
        this.city = city;
        this.friend = friend;
        this.bio = bio;
    }
}

const PEOPLE = {
    "people/1": new Person("Ann", 30, ["a", "b"], "Oslo", "people/2", "Likes hiking and Rust"),
    "people/2": new Person("Bob", 7, ["b"], "Bergen", "people/3", "Sails"),
    "people/3": new Person("Carl", 55, [], "Oslo", null, "Hikes on weekends"),
    "people/4": new Person("Dora", 120, ["a", "c"], null, "people/404", null),
};

let store;

function names(results) {
    return results.map(it => it.name);
}

describe("queries", () => {
    before(async () => {
        assert.ok(url, "CORVID_URL must be set");
        store = new DocumentStore(url, database);
        store.initialize();
        await store.maintenance.server.send(new CreateDatabaseOperation({ databaseName: database }));
        const session = store.openSession();
        for (const [id, person] of Object.entries(PEOPLE)) {
            await session.store(person, id);
        }
        await session.saveChanges();
    });

    after(async () => {
        if (store) {
            await store.maintenance.server.send(new DeleteDatabasesOperation({ databaseNames: [database], hardDelete: true }));
            store.dispose();
        }
    });

    it("filters", async () => {
        const s = store.openSession();
        const q = () => s.query(Person);
        assert.deepEqual(names(await q().whereEquals("name", "ann").all()), ["Ann"]);
        assert.deepEqual(names(await q().whereGreaterThan("age", 30).all()), ["Carl", "Dora"]);
        assert.deepEqual(names(await q().whereLessThanOrEqual("age", 30).all()), ["Ann", "Bob"]);
        assert.deepEqual(names(await q().whereBetween("age", 7, 55).all()), ["Ann", "Bob", "Carl"]);
        assert.deepEqual(names(await q().whereIn("name", ["Bob", "dora", "Zed"]).all()), ["Bob", "Dora"]);
        assert.deepEqual(names(await q().containsAll("tags", ["a", "b"]).all()), ["Ann"]);
        assert.deepEqual(names(await q().containsAny("tags", ["c", "b"]).all()), ["Ann", "Bob", "Dora"]);
        assert.deepEqual(names(await q().whereStartsWith("name", "c").all()), ["Carl"]);
        assert.deepEqual(names(await q().whereEndsWith("name", "RA").all()), ["Dora"]);
        assert.deepEqual(names(await q().whereExists("bio").all()), ["Ann", "Bob", "Carl", "Dora"]);
        assert.deepEqual(names(await q().search("bio", "hik*").all()), ["Ann", "Carl"]);
        assert.deepEqual(
            names(await q().whereEquals("name", "Ann").orElse().whereEquals("name", "Bob").all()),
            ["Ann", "Bob"]);
        assert.deepEqual(names(await q().not().whereEquals("city", "Oslo").all()), ["Bob", "Dora"]);
        assert.deepEqual(
            names(await q().whereEquals("city", "Oslo").andAlso().whereGreaterThan("age", 40).all()),
            ["Carl"]);
        assert.deepEqual(
            names(await s.query({ collection: "People" }).whereEquals("name", "Bob").all()),
            ["Bob"]);
    });

    it("orders by typed keys", async () => {
        const s = store.openSession();
        // As text "120" < "30" < "55" < "7"; as long, numerically.
        assert.deepEqual(names(await s.query(Person).orderBy("age").all()), ["Dora", "Ann", "Carl", "Bob"]);
        assert.deepEqual(names(await s.query(Person).orderBy("age", "Long").all()), ["Bob", "Ann", "Carl", "Dora"]);
        assert.deepEqual(
            names(await s.query(Person).orderByDescending("age", "Long").all()),
            ["Dora", "Carl", "Ann", "Bob"]);
    });

    it("projects, includes and pages", async () => {
        const s = store.openSession();
        const projected = await s.query(Person).whereEquals("city", "Oslo").selectFields(["name", "age"]).all();
        assert.deepEqual(projected.map(it => [it.name, it.age]), [["Ann", 30], ["Carl", 55]]);

        const found = await s.query(Person).whereEquals("name", "Ann").include("friend").all();
        assert.deepEqual(names(found), ["Ann"]);
        const requests = s.advanced.numberOfRequests;
        const friend = await s.load("people/2");
        assert.equal(friend.name, "Bob");
        assert.equal(s.advanced.numberOfRequests, requests, "the include spared a request");

        assert.deepEqual(names(await s.query(Person).orderBy("name").skip(1).take(2).all()), ["Bob", "Carl"]);
        assert.deepEqual(names(await s.query(Person).orderBy("name").take(1).all()), ["Ann"]);
        assert.deepEqual(names(await s.query(Person).orderBy("name").skip(3).all()), ["Dora"]);
        assert.equal((await s.query(Person).orderBy("name").first()).name, "Ann");
        assert.equal((await s.query(Person).whereEquals("name", "Carl").single()).name, "Carl");
        await assert.rejects(s.query(Person).whereEquals("city", "Oslo").single());
        assert.equal(await s.query(Person).whereEquals("name", "Bob").any(), true);
        assert.equal(await s.query(Person).whereEquals("name", "Zed").any(), false);
        assert.equal(await s.query(Person).count(), 4);
        assert.equal(await s.query(Person).whereGreaterThan("age", 20).count(), 3);
    });

    it("reports statistics", async () => {
        const s = store.openSession();
        let stats;
        const results = await s.query(Person)
            .whereGreaterThan("age", 10)
            .statistics(it => { stats = it; })
            .orderBy("name")
            .take(1)
            .all();
        assert.deepEqual(names(results), ["Ann"]);
        assert.equal(stats.totalResults, 3);
        assert.equal(stats.isStale, false);
        // Field names as written, sorted ordinally, as RavenDB names auto indexes.
        assert.equal(stats.indexName, "Auto/People/ByageAndname");
    });

    it("runs raw RQL and reports errors with their position", async () => {
        const s = store.openSession();
        const raw = await s.advanced
            .rawQuery("from People where age between $low and $high order by age as long desc", Person)
            .addParameter("low", 10)
            .addParameter("high", 100)
            .all();
        assert.deepEqual(names(raw), ["Carl", "Ann"]);
        await assert.rejects(
            s.advanced.rawQuery("from People where age >", Person).all(),
            error => error.message.includes("1:24"));
    });

    it("streams query results and documents", async () => {
        const s = store.openSession();
        const query = s.query(Person).whereGreaterThan("age", 10).orderBy("age", "Long");
        let streamStats;
        const stream = await s.advanced.stream(query, it => { streamStats = it; });
        const streamed = [];
        for await (const item of stream) {
            streamed.push(item);
        }
        assert.deepEqual(streamed.map(it => it.document.name), ["Ann", "Carl", "Dora"]);
        assert.equal(streamed[0].id, "people/1");
        assert.equal(streamStats.totalResults, 3);

        const byPrefix = await s.advanced.stream("people/");
        const ids = [];
        for await (const item of byPrefix) {
            ids.push(item.id);
        }
        assert.deepEqual(ids, ["people/1", "people/2", "people/3", "people/4"]);
    });
});
