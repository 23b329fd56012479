"use strict";
// Shared by this suite's test files: the server under test, a database of one's own per file,
// and polling for what arrives asynchronously (ETL).

const crypto = require("node:crypto");
const {
    DocumentStore,
    CreateDatabaseOperation,
    DeleteDatabasesOperation,
} = require("ravendb");

/** The server under test, from CORVID_URL (e.g. http://127.0.0.1:8080). */
function serverUrl() {
    const url = (process.env.CORVID_URL || "").trim().replace(/\/+$/, "");
    if (!url) {
        throw new Error("CORVID_URL is not set (e.g. CORVID_URL=http://127.0.0.1:8080)");
    }
    return url;
}

/** `node_<area>_<8 hex>`: only characters every RavenDB version accepts in a database name. */
function uniqueDatabaseName(area) {
    return `node_${area.replace(/[^A-Za-z0-9_]/g, "_")}_${crypto.randomBytes(4).toString("hex")}`;
}

/** An initialized store bound to no database, for server-wide operations. */
function openAdminStore() {
    const store = new DocumentStore(serverUrl());
    store.initialize();
    return store;
}

async function createDatabase(adminStore, name) {
    return adminStore.maintenance.server.send(new CreateDatabaseOperation({ databaseName: name }));
}

async function hardDeleteDatabase(adminStore, name) {
    return adminStore.maintenance.server.send(
        new DeleteDatabasesOperation({ databaseNames: [name], hardDelete: true }));
}

/**
 * A fresh database named for `area` and a store bound to it; `close()` closes the store and
 * hard-deletes the database (call it from `after()`).
 */
async function openDatabase(area) {
    const name = uniqueDatabaseName(area);
    const admin = openAdminStore();
    await createDatabase(admin, name);
    const store = new DocumentStore(serverUrl(), name);
    store.initialize();
    return {
        name,
        store,
        admin,
        async close() {
            store.dispose();
            try {
                await hardDeleteDatabase(admin, name);
            } finally {
                admin.dispose();
            }
        },
    };
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Calls `probe` until it returns a truthy value and returns that value; fails after `timeoutMs`,
 * showing the last value.
 */
async function waitFor(what, probe, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await probe();
        if (value) {
            return value;
        }
        if (Date.now() >= deadline) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last probe: ${JSON.stringify(value)}`);
        }
        await sleep(100);
    }
}

module.exports = {
    serverUrl,
    uniqueDatabaseName,
    openAdminStore,
    createDatabase,
    hardDeleteDatabase,
    openDatabase,
    sleep,
    waitFor,
};
