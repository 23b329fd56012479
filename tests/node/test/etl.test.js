"use strict";
// The ETL operations with the official Node.js client, data checked at the destination:
// PutConnectionStringOperation (Raven and Sql), AddEtlOperation, UpdateEtlOperation,
// GetOngoingTaskInfoOperation, ToggleOngoingTaskStateOperation, ResetEtlOperation,
// DeleteOngoingTaskOperation. The scenarios are those of tests/python/test_etl.py; the SQL
// destination is a SQLite file read back with Python's sqlite3 module.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const {
    RavenConnectionString,
    SqlConnectionString,
    PutConnectionStringOperation,
    GetConnectionStringsOperation,
    RemoveConnectionStringOperation,
    RavenEtlConfiguration,
    SqlEtlConfiguration,
    Transformation,
    AddEtlOperation,
    UpdateEtlOperation,
    ResetEtlOperation,
    GetOngoingTaskInfoOperation,
    GetDatabaseRecordOperation,
    ToggleOngoingTaskStateOperation,
    DeleteOngoingTaskOperation,
} = require("ravendb");
const corvid = require("../lib/corvid");

const CONNECTION_NAME = "to-destination";
// Long enough for an enabled task to have sent a document (it sends within milliseconds).
const QUIET_PERIOD_MS = 1500;
const PEOPLE_ID = /^users\/(\d+)\/people\//i;

function transformation(script) {
    const it = new Transformation();
    it.name = "script1";
    it.collections = ["Users"];
    it.script = script;
    return it;
}

function ravenEtl(name, script) {
    const config = new RavenEtlConfiguration();
    config.name = name;
    config.connectionStringName = CONNECTION_NAME;
    config.transforms = [transformation(script)];
    return config;
}

async function storeUsers(store, users) {
    const session = store.openSession();
    for (const [id, name] of Object.entries(users)) {
        await session.store({ name, "@metadata": { "@collection": "Users" } }, id);
    }
    await session.saveChanges();
}

async function deleteDocument(store, id) {
    const session = store.openSession();
    await session.delete(id);
    await session.saveChanges();
}

async function loadName(store, id) {
    const doc = await store.openSession().load(id);
    return doc ? doc.name : null;
}

/** The destination's People documents: {id: Name}. */
async function people(store) {
    const session = store.openSession();
    const docs = await session.advanced.loadStartingWith("users/");
    const result = {};
    for (const doc of docs) {
        const metadata = session.advanced.getMetadataFor(doc);
        if (metadata["@collection"] === "People") {
            result[metadata["@id"]] = doc.Name;
        }
    }
    return result;
}

/**
 * The names and ids of a database's ETL tasks, from its record. The Node.js client cannot ask
 * GetOngoingTaskInfoOperation about a missing task: RavenDB (and Corvid) answer 404 and the
 * client then fails with "MappingError: Body stream cannot be null" instead of returning null.
 */
async function etlTasks(db) {
    const record = await db.store.maintenance.server.send(new GetDatabaseRecordOperation(db.name));
    return [...record.ravenEtls, ...record.sqlEtls].map(it => ({ name: it.name, taskId: it.taskId }));
}

async function assertNoTask(db, key) {
    const tasks = await etlTasks(db);
    assert.ok(!tasks.some(it => it.name === key || it.taskId === key), `task ${key} is still there: ${JSON.stringify(tasks)}`);
}

describe("Raven ETL operations", () => {
    let source;
    let destination;

    before(async () => {
        source = await corvid.openDatabase("etl_src");
        destination = await corvid.openDatabase("etl_dst");
    });

    after(async () => {
        // The source first, so its ETL stops before the destination goes away.
        try {
            await source.close();
        } finally {
            await destination.close();
        }
    });

    function connectionString() {
        const it = new RavenConnectionString();
        it.name = CONNECTION_NAME;
        it.database = destination.name;
        it.topologyDiscoveryUrls = [corvid.serverUrl()];
        return it;
    }

    const taskInfo = key => source.store.maintenance.send(new GetOngoingTaskInfoOperation(key, "RavenEtl"));

    it("puts a connection string, and a task with an empty script copies, updates and deletes", async () => {
        const put = await source.store.maintenance.send(new PutConnectionStringOperation(connectionString()));
        assert.equal(typeof put.raftCommandIndex, "number");
        const all = await source.store.maintenance.send(new GetConnectionStringsOperation());
        assert.deepEqual(Object.keys(all.ravenConnectionStrings), [CONNECTION_NAME]);
        const stored = all.ravenConnectionStrings[CONNECTION_NAME];
        assert.equal(stored.database, destination.name);
        assert.deepEqual(stored.topologyDiscoveryUrls, [corvid.serverUrl()]);

        const added = await source.store.maintenance.send(new AddEtlOperation(ravenEtl("users-copy", "")));
        assert.ok(Number.isInteger(added.taskId) && added.taskId > 0, JSON.stringify(added));

        const session = source.store.openSession();
        await session.store({ name: "Acme", "@metadata": { "@collection": "Companies" } }, "companies/1");
        await session.saveChanges();
        await storeUsers(source.store, { "users/1": "Alice", "users/2": "Bob" });
        await corvid.waitFor("users/1 and users/2 at the destination",
            async () => await loadName(destination.store, "users/1") === "Alice"
                && await loadName(destination.store, "users/2") === "Bob");
        const reader = destination.store.openSession();
        const alice = await reader.load("users/1");
        assert.equal(reader.advanced.getMetadataFor(alice)["@collection"], "Users");
        // companies/1 was written before the users: had it been sent, it would be there by now.
        assert.equal(await reader.load("companies/1"), null);

        await storeUsers(source.store, { "users/1": "Alicia" });
        await corvid.waitFor("the update of users/1",
            async () => await loadName(destination.store, "users/1") === "Alicia");
        await deleteDocument(source.store, "users/2");
        await corvid.waitFor("the delete of users/2",
            async () => await loadName(destination.store, "users/2") === null);

        await source.store.maintenance.send(new DeleteOngoingTaskOperation(added.taskId, "RavenEtl"));
    });

    it("reads task info and toggles the task's state", async () => {
        await source.store.maintenance.send(new PutConnectionStringOperation(connectionString()));
        const { taskId } = await source.store.maintenance.send(new AddEtlOperation(ravenEtl("users-toggle", "")));
        await storeUsers(source.store, { "users/10": "Carol" });
        await corvid.waitFor("users/10 at the destination",
            async () => await loadName(destination.store, "users/10") === "Carol");

        for (const key of [taskId, "users-toggle"]) {
            const info = await taskInfo(key);
            assert.ok(info, `no task info for ${key}`);
            assert.equal(info.taskId, taskId);
            assert.equal(info.taskName, "users-toggle");
            assert.equal(info.taskType, "RavenEtl");
            assert.equal(info.taskState, "Enabled");
            assert.equal(info.taskConnectionStatus, "Active");
            assert.equal(info.connectionStringName, CONNECTION_NAME);
            assert.equal(info.destinationDatabase, destination.name);
            assert.ok(info.configuration instanceof RavenEtlConfiguration);
            assert.equal(info.configuration.etlType, "Raven");
            assert.equal(info.configuration.name, "users-toggle");
            assert.equal(info.configuration.transforms[0].script, "");
            assert.deepEqual(info.configuration.transforms[0].collections, ["Users"]);
        }

        const disabled = await source.store.maintenance.send(
            new ToggleOngoingTaskStateOperation(taskId, "RavenEtl", true));
        assert.equal(disabled.taskId, taskId);
        assert.equal((await taskInfo(taskId)).taskState, "Disabled");
        await storeUsers(source.store, { "users/11": "Dave" });
        await corvid.sleep(QUIET_PERIOD_MS);
        assert.equal(await loadName(destination.store, "users/11"), null, "a disabled task sent a document");

        const enabled = await source.store.maintenance.send(
            new ToggleOngoingTaskStateOperation("users-toggle", "RavenEtl", false));
        assert.equal(enabled.taskId, taskId);
        assert.equal((await taskInfo("users-toggle")).taskState, "Enabled");
        await corvid.waitFor("users/11 after enabling",
            async () => await loadName(destination.store, "users/11") === "Dave");

        await source.store.maintenance.send(new DeleteOngoingTaskOperation(taskId, "RavenEtl"));
        await assertNoTask(source, taskId);
    });

    it("updates the script, resets the task, deletes it, then removes the connection string", async () => {
        await source.store.maintenance.send(new PutConnectionStringOperation(connectionString()));
        const { taskId } = await source.store.maintenance.send(
            new AddEtlOperation(ravenEtl("users-people", "loadToPeople({Name: this.name + '!'})")));
        await storeUsers(source.store, { "users/20": "Erin" });
        await corvid.waitFor("People for users/20",
            async () => Object.values(await people(destination.store)).includes("Erin!"));

        const updated = await source.store.maintenance.send(new UpdateEtlOperation(
            taskId, ravenEtl("users-people", "loadToPeople({Name: this.name + '?'})"), false));
        assert.ok(Number.isInteger(updated.taskId) && updated.taskId !== taskId, JSON.stringify(updated));
        await assertNoTask(source, taskId);
        assert.equal((await taskInfo("users-people")).taskId, updated.taskId);
        assert.equal((await taskInfo(updated.taskId)).configuration.transforms[0].script,
            "loadToPeople({Name: this.name + '?'})");

        await storeUsers(source.store, { "users/21": "Frank" });
        await corvid.waitFor("People for users/21 by the new script",
            async () => Object.values(await people(destination.store)).includes("Frank?"));
        const beforeReset = await people(destination.store);
        assert.ok(Object.values(beforeReset).includes("Erin!"), "the update alone re-sent users/20");

        // Reset: every user goes again, through the new script, under new People ids.
        await source.store.maintenance.send(new ResetEtlOperation("users-people", "script1"));
        const afterReset = await corvid.waitFor("every user sent again after the reset", async () => {
            const current = await people(destination.store);
            const byUser = {};
            for (const [id, name] of Object.entries(current)) {
                byUser[id.match(PEOPLE_ID)[1]] = name;
            }
            const fresh = Object.keys(current).every(id => !(id in beforeReset));
            return fresh && byUser["20"] === "Erin?" && byUser["21"] === "Frank?" ? current : null;
        });

        const deleted = await source.store.maintenance.send(
            new DeleteOngoingTaskOperation(updated.taskId, "RavenEtl"));
        assert.equal(deleted.taskId, updated.taskId);
        await assertNoTask(source, "users-people");
        await assertNoTask(source, updated.taskId);
        await storeUsers(source.store, { "users/22": "Grace" });
        await corvid.sleep(QUIET_PERIOD_MS);
        assert.deepEqual(await people(destination.store), afterReset, "a deleted task sent a document");

        await source.store.maintenance.send(new RemoveConnectionStringOperation(connectionString()));
        const left = await source.store.maintenance.send(new GetConnectionStringsOperation());
        assert.deepEqual(left.ravenConnectionStrings, {});
    });

    it("rejects a script with a syntax error, naming its line", async () => {
        await source.store.maintenance.send(new PutConnectionStringOperation(connectionString()));
        await assert.rejects(
            source.store.maintenance.send(new AddEtlOperation(
                ravenEtl("broken", "var name = this.name;\n\nloadToPeople({Name: name + });\n"))),
            error => /\bline\b\D{0,3}3\b/i.test(error.message));
        await assertNoTask(source, "broken");
    });
});

// Python's sqlite3 module (python3 is needed by the Python suite anyway): runs one statement and
// prints its rows as `a|b|c` lines.
const SQLITE_SCRIPT = `
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
rows = connection.execute(sys.argv[2]).fetchall()
connection.commit()
print("\\n".join("|".join(str(value) for value in row) for row in rows))
`;

function sqlite(file, sql) {
    return execFileSync("python3", ["-c", SQLITE_SCRIPT, file, sql], { encoding: "utf8" }).trim();
}

describe("SQL ETL operations (SQLite destination)", () => {
    let source;
    let directory;
    let file;

    before(async () => {
        source = await corvid.openDatabase("etl_sql");
        // SQLite files live in the server's <data-dir>/sqlite (docs/security/destinations.md).
        const sqliteDir = process.env.CORVID_DATA_DIR
            ? path.join(process.env.CORVID_DATA_DIR, "sqlite")
            : os.tmpdir();
        directory = fs.mkdtempSync(path.join(sqliteDir, "corvid-node-etl-"));
        file = path.join(directory, "orders.db");
        sqlite(file, "CREATE TABLE Orders (Id TEXT, Customer TEXT, Total REAL)");
    });

    after(async () => {
        try {
            await source.close();
        } finally {
            fs.rmSync(directory, { recursive: true, force: true });
        }
    });

    const taskInfo = key => source.store.maintenance.send(new GetOngoingTaskInfoOperation(key, "SqlEtl"));

    function sqlEtl(script) {
        const config = new SqlEtlConfiguration();
        config.name = "orders-to-sqlite";
        config.connectionStringName = "sqlite";
        config.sqlTables = [{ tableName: "Orders", documentIdColumn: "Id", insertOnlyMode: false }];
        const it = new Transformation();
        it.name = "orders";
        it.collections = ["Orders"];
        it.script = script;
        config.transforms = [it];
        return config;
    }

    async function storeOrder(id, customer, total) {
        const session = source.store.openSession();
        await session.store({ customer, total, "@metadata": { "@collection": "Orders" } }, id);
        await session.saveChanges();
    }

    it("loads rows into the SQL destination through every task operation", async () => {
        const connection = new SqlConnectionString();
        connection.name = "sqlite";
        connection.factoryName = "Microsoft.Data.Sqlite";
        connection.connectionString = `Data Source=${file}`;
        await source.store.maintenance.send(new PutConnectionStringOperation(connection));
        const listed = await source.store.maintenance.send(new GetConnectionStringsOperation());
        assert.equal(listed.sqlConnectionStrings["sqlite"].factoryName, "Microsoft.Data.Sqlite");

        const { taskId } = await source.store.maintenance.send(
            new AddEtlOperation(sqlEtl("loadToOrders({Customer: this.customer, Total: this.total})")));
        await storeOrder("orders/1", "Alice", 10.5);
        await storeOrder("orders/2", "Bob", 20);
        const rows = () => sqlite(file, "SELECT Id, Customer, Total FROM Orders ORDER BY Id");
        await corvid.waitFor("two rows in Orders", () => rows() === "orders/1|Alice|10.5\norders/2|Bob|20.0");

        const info = await taskInfo(taskId);
        assert.equal(info.taskName, "orders-to-sqlite");
        assert.equal(info.taskType, "SqlEtl");
        assert.equal(info.taskState, "Enabled");
        assert.ok(info.configuration instanceof SqlEtlConfiguration);
        assert.equal(info.configuration.etlType, "Sql");
        assert.deepEqual(info.configuration.sqlTables.map(it => it.tableName), ["Orders"]);
        assert.equal(info.connectionStringDefined, true);

        // An update of the document replaces its row; a delete removes it.
        await storeOrder("orders/1", "Alice", 11);
        await deleteDocument(source.store, "orders/2");
        await corvid.waitFor("the update and the delete", () => rows() === "orders/1|Alice|11.0");

        // Disabled, nothing goes; enabled again, the pending change goes.
        await source.store.maintenance.send(new ToggleOngoingTaskStateOperation(taskId, "SqlEtl", true));
        assert.equal((await taskInfo(taskId)).taskState, "Disabled");
        await storeOrder("orders/3", "Carol", 3);
        await corvid.sleep(QUIET_PERIOD_MS);
        assert.equal(rows(), "orders/1|Alice|11.0", "a disabled task wrote a row");
        await source.store.maintenance.send(new ToggleOngoingTaskStateOperation(taskId, "SqlEtl", false));
        await corvid.waitFor("orders/3 after enabling",
            () => rows() === "orders/1|Alice|11.0\norders/3|Carol|3.0");

        // Update the script (the rows of later changes follow it), then reset: every order again.
        const updated = await source.store.maintenance.send(new UpdateEtlOperation(
            taskId, sqlEtl("loadToOrders({Customer: this.customer.toUpperCase(), Total: this.total})"), false));
        await source.store.maintenance.send(new ResetEtlOperation("orders-to-sqlite", "orders"));
        await corvid.waitFor("every order again, by the new script",
            () => rows() === "orders/1|ALICE|11.0\norders/3|CAROL|3.0");

        await source.store.maintenance.send(new DeleteOngoingTaskOperation(updated.taskId, "SqlEtl"));
        await assertNoTask(source, "orders-to-sqlite");
        await storeOrder("orders/4", "Dan", 4);
        await corvid.sleep(QUIET_PERIOD_MS);
        assert.equal(rows(), "orders/1|ALICE|11.0\norders/3|CAROL|3.0", "a deleted task wrote a row");
    });
});
