"use strict";
// Steps through the Studio's pages shared by the test files (only through the UI), and the
// outside checks the SQL tests need (sqlite3 and psql command lines).

const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const { waitFor } = require("./harness");

/** The hash route of a Studio page, e.g. `route("databases/tasks/ongoingTasks", { database })`. */
function route(path, params = {}) {
    const search = new URLSearchParams(params).toString();
    return `/studio/index.html#${path}${search ? `?${search}` : ""}`;
}

/** The field labelled exactly `label` (labels are `<label for>`, so this is exact). */
function field(page, label) {
    return page.getByLabel(label, { exact: true });
}

/** Creates a database on the Databases page and waits for its row. */
async function createDatabaseInUi(page, name) {
    if (!/#databases$/.test(page.url())) {
        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Databases", exact: true }).click();
    }
    await field(page, "New database name").fill(name);
    await page.getByRole("button", { name: "Create database", exact: true }).click();
    await page.locator(`tr[data-database="${name}"]`).waitFor();
}

/**
 * Creates a document on the documents page: "New document", id, collection, JSON, Save.
 * Starts from the documents page of `db` (through the sidebar when the Studio is open).
 */
async function createDocumentInUi(page, db, id, collection, body) {
    await page.goto(route("databases/documents", { database: db, collection }));
    await page.getByRole("button", { name: "New document", exact: true }).click();
    await page.getByRole("heading", { name: "New document" }).waitFor();
    await field(page, "Document id").fill(id);
    await field(page, "Collection").fill(collection);
    await field(page, "Document JSON").fill(JSON.stringify(body, null, 2));
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await waitForToast(page, `Created ${id}`);
    await page.getByTestId("document-id").filter({ hasText: id }).waitFor();
}

/** Opens a document's page, replaces its JSON (without @metadata) and saves it. */
async function editDocumentInUi(page, db, id, body) {
    await page.goto(route("databases/edit", { database: db, id }));
    await page.getByTestId("document-id").filter({ hasText: id }).waitFor();
    await field(page, "Document JSON").fill(JSON.stringify(body, null, 2));
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await waitForToast(page, `Saved ${id}`);
}

/** The card of an ongoing task on the Ongoing Tasks page. */
function taskCard(page, name) {
    return page.locator(`section.task[data-task="${name}"]`);
}

/** Waits until a task's state badge reads `state` (the list refreshes every second). */
async function waitForTaskState(page, name, state, timeout = 10_000) {
    const badge = taskCard(page, name).getByRole("status");
    await waitFor(`task ${name} to be ${state}`, async () => (await badge.textContent()) === state, timeout);
}

/** Clicks `button` of a confirm dialog (the dialog titled `title`). */
async function confirm(page, button, title) {
    const dialog = title ? page.getByRole("dialog", { name: title }) : page.getByRole("dialog");
    await dialog.getByRole("button", { name: button, exact: true }).click();
    await dialog.waitFor({ state: "detached" });
}

/** Waits for a toast whose text matches `text`. */
async function waitForToast(page, text) {
    await page.locator("#toasts .toast", { hasText: text }).first().waitFor();
}

/** Opens the "Test script" panel of the task editor, runs a test and returns the output box. */
async function runScriptTest(page, documentId, { transformation, asDelete = false, rollback } = {}) {
    const panel = page.locator("details.test-panel");
    if (!(await panel.evaluate(el => el.open))) {
        await panel.getByText("Test script", { exact: true }).click();
    }
    await field(page, "Document id").fill(documentId);
    if (transformation) {
        await field(page, "Transformation").selectOption(transformation);
    }
    await field(page, "Test a delete").setChecked(asDelete);
    if (rollback !== undefined) {
        await field(page, "Run the SQL and roll it back").setChecked(rollback);
    }
    const output = panel.locator(".test-output");
    await output.evaluate(el => el.replaceChildren());
    await panel.getByRole("button", { name: "Test", exact: true }).click();
    // The output, or an error the page put next to a field (then there is no output).
    const shownErrors = () => page.locator(".field-error, .editor-message").evaluateAll(
        els => els.map(el => el.textContent.trim()).filter(Boolean));
    await waitFor("the test's output", async () =>
        (await output.textContent()).trim().length > 0 || (await shownErrors()).length > 0);
    if ((await output.textContent()).trim().length === 0) {
        throw new Error(`Test showed no output but: ${(await shownErrors()).join(" | ")}`);
    }
    return output;
}

// ---------------------------------------------------------------------------------------------
// Outside checks

/** Runs SQL against a SQLite file with the sqlite3 command line; rows as arrays of strings. */
function sqlite(file, sql) {
    const out = execFileSync("sqlite3", ["-batch", "-separator", "\t", file, sql], { encoding: "utf8" });
    return out.split("\n").filter(line => line.length > 0).map(line => line.split("\t"));
}

const PG = { host: "127.0.0.1", port: "5432", user: "postgres", database: "test" };

/** Whether the machine's PostgreSQL answers (psql present, server up). */
function postgresAvailable() {
    try {
        psql("SELECT 1");
        return true;
    } catch {
        return false;
    }
}

/** Runs SQL with psql (unaligned, tab-separated, no headers); rows as arrays of strings. */
function psql(sql) {
    const out = execFileSync("psql", [
        "-h", PG.host, "-p", PG.port, "-U", PG.user, "-d", PG.database,
        "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-F", "\t", "-c", sql,
    ], { encoding: "utf8", env: { ...process.env, PGCONNECT_TIMEOUT: "5" }, stdio: ["ignore", "pipe", "pipe"] });
    return out.split("\n").filter(line => line.length > 0).map(line => line.split("\t"));
}

/** Whether the machine's RabbitMQ answers (rabbitmqctl present, broker up). */
function rabbitmqAvailable() {
    try {
        rabbitmqctl(["list_queues", "--quiet", "--no-table-headers", "name"]);
        return true;
    } catch {
        return false;
    }
}

/** Runs rabbitmqctl; its standard output. */
function rabbitmqctl(args) {
    return execFileSync("rabbitmqctl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
}

/** The number of ready messages in a RabbitMQ queue (0 when there is no such queue). */
function rabbitQueueMessages(queue) {
    const line = rabbitmqctl(["list_queues", "--quiet", "--no-table-headers", "name", "messages"])
        .split("\n").map(it => it.split("\t")).find(([name]) => name === queue);
    return line ? Number(line[1]) : 0;
}

/** Deletes a RabbitMQ queue, if there is one. */
function deleteRabbitQueue(queue) {
    try {
        rabbitmqctl(["delete_queue", queue]);
    } catch {
        // not there
    }
}

/** Deletes a RabbitMQ exchange of vhost `/`, if there is one (rabbitmqctl has no command). */
function deleteRabbitExchange(exchange) {
    if (!/^[A-Za-z0-9._-]+$/.test(exchange)) throw new Error(`unexpected exchange name ${exchange}`);
    try {
        rabbitmqctl(["eval", `rabbit_exchange:delete(rabbit_misc:r(<<"/">>, exchange, <<"${exchange}">>), false, <<"corvid-tests">>).`]);
    } catch {
        // not there
    }
}

/** The documents of `collection` as `{id: doc}` (through the API). */
async function documentsOf(api, db, collection) {
    const results = await api.query(db, `from ${collection}`);
    return Object.fromEntries(results.map(doc => [doc["@metadata"]["@id"], doc]));
}

/** Asserts that `fn` keeps returning a falsy value for `ms`. */
async function staysFalse(what, fn, ms, intervalMs = 250) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        const value = await fn();
        assert.ok(!value, `${what} (got ${JSON.stringify(value)})`);
        await new Promise(resolve => setTimeout(resolve, intervalMs));
    }
}

module.exports = {
    PG,
    confirm,
    createDatabaseInUi,
    createDocumentInUi,
    editDocumentInUi,
    documentsOf,
    field,
    postgresAvailable,
    rabbitmqAvailable,
    rabbitQueueMessages,
    deleteRabbitQueue,
    deleteRabbitExchange,
    psql,
    route,
    runScriptTest,
    sqlite,
    staysFalse,
    taskCard,
    waitForTaskState,
    waitForToast,
};
