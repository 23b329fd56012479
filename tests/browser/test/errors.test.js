"use strict";
// What goes wrong is shown where it is about: a script's syntax error at its line, a
// connection string problem under the connection field, a destination that fails in the task
// list and on the task's page (with the failing document), and a server that goes away and
// comes back (the Studio says so and recovers by itself).

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const { studioSuite, uniqueName, waitFor, sleep } = require("../lib/harness");
const { field, route, taskCard, waitForTaskState, waitForToast } = require("../lib/studio");

const company = (name) => ({ Name: name, "@metadata": { "@collection": "Companies" } });

/** A database with two companies and a RavenDB connection string to `destination`. */
async function setup(api, server, { destination, connection = "to-destination" } = {}) {
    const db = uniqueName("errors");
    await api.createDatabase(db);
    await api.putDocument(db, "companies/1", company("Good"));
    await api.putDocument(db, "companies/2", company("Bad"));
    await api.requestOk("PUT", `/databases/${db}/admin/connection-strings`, {
        Type: "Raven", Name: connection, Database: destination || `${db}_copy`, TopologyDiscoveryUrls: [server.url],
    });
    return db;
}

async function addTask(api, db, name, script, connection = "to-destination") {
    return api.requestOk("PUT", `/databases/${db}/admin/etl`, {
        Name: name, ConnectionStringName: connection, EtlType: "Raven",
        Transforms: [{ Name: "main", Collections: ["Companies"], Script: script }],
    });
}

async function taskCount(api, db) {
    return (await api.requestOk("GET", `/databases/${db}/tasks`)).OngoingTasksList.length;
}

describe("errors", () => {
    // A failed load is retried after 1 s (not 5), so recovery shows quickly.
    const suite = studioSuite({ serverOptions: { args: ["--etl-fallback-secs", "1", "--etl-max-fallback-secs", "2"] } });

    suite.test("a script syntax error marks its line in the gutter and says why; nothing is saved", async ({ page, api, server, allowError }) => {
        const db = await setup(api, server);
        allowError(/status of 400/);
        await page.goto(route("databases/tasks/editRavenEtlTask", { database: db }));
        await field(page, "Task name").fill("broken");
        await field(page, "Connection string").selectOption("to-destination");
        const script = field(page, "Script of Script #1");
        // Line 3 lacks the comma after line 2.
        await script.fill("loadToCompanies({\n    Name: this.Name\n    Kind: 'company'\n});");
        await page.getByRole("button", { name: "Save", exact: true }).click();

        const marked = page.locator(".editor .gutter .err");
        await marked.waitFor();
        assert.equal(await marked.textContent(), "3");
        const message = page.locator(".editor-message");
        assert.match(await message.textContent(), /line 3/);
        assert.match(await message.textContent(), /syntax/i);
        assert.equal(await taskCount(api, db), 0, "a task with a broken script must not be saved");
        assert.match(page.url(), /editRavenEtlTask/, "the page stays on the form");

        // Typing clears the mark; the corrected script saves.
        await script.fill("loadToCompanies({\n    Name: this.Name,\n    Kind: 'company'\n});");
        assert.equal(await marked.count(), 0);
        assert.equal((await message.textContent()).trim(), "");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Task broken saved");
        assert.equal(await taskCount(api, db), 1);
    });

    suite.test("connection string problems are shown under the connection string", async ({ page, api, server, allowError }) => {
        const db = await setup(api, server, { connection: "soon-gone" });
        allowError(/status of 400/);
        await page.goto(route("databases/tasks/editRavenEtlTask", { database: db }));
        await field(page, "Task name").fill("orphan");
        await field(page, "Connection string").selectOption("soon-gone");
        // Someone removes it while the form is open.
        await api.requestOk("DELETE", `/databases/${db}/admin/connection-strings?connectionString=soon-gone&type=Raven`);
        await page.getByRole("button", { name: "Save", exact: true }).click();
        const connectionField = page.locator(".field", { has: field(page, "Connection string") });
        await connectionField.locator(".field-error", { hasText: /soon-gone/ }).waitFor();
        assert.match(await connectionField.locator(".field-error").textContent(), /connection string `soon-gone` .*does not exist/);
        assert.equal(await taskCount(api, db), 0);

        // A new connection string with a discovery URL that is not one: the error is in the
        // new connection string's box, and neither it nor the task is saved.
        await field(page, "Connection string").selectOption("__new__");
        await field(page, "New connection string name").fill("bad-url");
        await field(page, "Destination database").fill("anywhere");
        await field(page, "Discovery URLs (one per line)").fill("not a url");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        const box = page.locator(".new-connection > .field-error");
        await waitFor("the error in the new connection string box", async () => /not an http/.test(await box.textContent()));
        assert.equal(await taskCount(api, db), 0);
        const strings = await api.requestOk("GET", `/databases/${db}/admin/connection-strings`);
        assert.deepEqual(Object.keys(strings.RavenConnectionStrings || {}), []);
    });

    suite.test("a missing destination database: the list shows Reconnect and why, and recovers once it exists", async ({ page, api, server }) => {
        const destination = uniqueName("missing");
        const db = await setup(api, server, { destination });
        await addTask(api, db, "to-nowhere", "loadToCompanies({ Name: this.Name });");
        await page.goto(route("databases/tasks/ongoingTasks", { database: db }));
        await waitForTaskState(page, "to-nowhere", "Reconnect (fallback)");
        const card = taskCard(page, "to-nowhere");
        assert.match(await card.locator(".task-error").textContent(), new RegExp(`database \`${destination}\` does not exist`));
        // The task's own page says the same, among its errors.
        await card.getByRole("link", { name: "to-nowhere", exact: true }).click();
        await page.getByRole("heading", { name: "RavenDB ETL: to-nowhere" }).waitFor();
        const errors = page.getByRole("table", { name: "Errors" });
        await errors.waitFor();
        assert.match(await errors.textContent(), new RegExp(`does not exist`));
        assert.match(await page.locator(".error-box").first().textContent(), /Loading fails, retrying/);

        // Create it through the Studio: the task finds it on its next retry.
        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Databases", exact: true }).click();
        await field(page, "New database name").fill(destination);
        await page.getByRole("button", { name: "Create database", exact: true }).click();
        await page.locator(`tr[data-database="${destination}"]`).waitFor();
        await page.goto(route("databases/tasks/ongoingTasks", { database: db }));
        await waitForTaskState(page, "to-nowhere", "Active", 15_000);
        await waitFor("the error cleared", async () => (await card.locator(".task-error").textContent()) === "");
        await waitFor("companies/1 at the destination", () => api.getDocument(destination, "companies/1"));
    });

    suite.test("a script that throws for one document: the task's Errors name it; the charts are drawn", async ({ page, api, server }) => {
        const db = await setup(api, server);
        await api.createDatabase(`${db}_copy`);
        await addTask(api, db, "picky", "if (this.Name === 'Bad') throw new Error('bad company');\nloadToCompanies({ Name: this.Name });");
        const { TaskId } = (await api.requestOk("GET", `/databases/${db}/tasks`)).OngoingTasksList[0];
        await waitFor("companies/1 sent", () => api.getDocument(`${db}_copy`, "companies/1"));
        await page.goto(route("databases/tasks/etlTaskDetails", { database: db, taskId: TaskId, type: "RavenEtl" }));
        const errors = page.getByRole("table", { name: "Errors" });
        await errors.waitFor();
        const row = errors.locator("tbody tr", { hasText: "companies/2" });
        await row.waitFor();
        assert.match(await row.textContent(), /Transformation/);
        assert.match(await row.textContent(), /bad company/);
        // The document id links to the document.
        assert.equal(await row.getByRole("link", { name: "companies/2" }).getAttribute("href"),
            `#databases/edit?database=${db}&id=companies%2F2`);
        assert.equal(await api.getDocument(`${db}_copy`, "companies/2"), null);
        // The batch chart has the batch that ran.
        const chart = page.getByRole("img", { name: "ETL batches: durations and sizes" });
        await chart.waitFor();
        await waitFor("a bar in the batch chart", async () => (await chart.locator("rect").count()) > 1);
        // The right axis (items) labels its five ticks with distinct values (2 items: 0 … 2).
        const itemTicks = await chart.locator('text[x="720"]').allTextContents();
        assert.equal(itemTicks.length, 5);
        assert.equal(new Set(itemTicks).size, 5, `item axis labels ${itemTicks}`);
        await page.getByRole("img", { name: "Processed per second" }).waitFor();
    });

    suite.test("invalid document JSON is shown at its line and column, and nothing is saved", async ({ page, api }) => {
        const db = uniqueName("json");
        await api.createDatabase(db);
        await page.goto(route("databases/documents", { database: db }));
        await page.getByRole("button", { name: "New document", exact: true }).click();
        await field(page, "Document id").fill("notes/1");
        await field(page, "Collection").fill("Notes");
        const json = field(page, "Document JSON");
        // Line 4 starts without the comma line 3 needed: the error is at line 4, column 3.
        await json.fill('{\n  "Title": "first",\n  "Body": "second"\n  "Done": false\n}');
        await page.getByRole("button", { name: "Save", exact: true }).click();
        const marked = page.locator(".editor .gutter .err");
        await marked.waitFor();
        assert.equal(await marked.textContent(), "4");
        assert.match(await page.locator(".editor-message").textContent(), /^Line 4, column 3: expected ',' or '}'/);
        assert.match(await page.getByRole("alert").filter({ hasText: "Invalid JSON" }).textContent(), /line 4, column 3 — nothing was saved/);
        // The caret is put where the error is.
        const caret = await json.evaluate(el => el.selectionStart);
        assert.equal(caret, '{\n  "Title": "first",\n  "Body": "second"\n  '.length);
        assert.equal(await api.getDocument(db, "notes/1"), null, "nothing was saved");
        assert.match(page.url(), /databases\/edit/, "still on the new document");

        // An existing document: a trailing comma is refused and the stored one stays as it was.
        await api.putDocument(db, "notes/2", { Title: "kept", "@metadata": { "@collection": "Notes" } });
        await page.goto(route("databases/edit", { database: db, id: "notes/2" }));
        await page.getByTestId("document-id").filter({ hasText: "notes/2" }).waitFor();
        await json.fill('{\n  "Title": "changed",\n}');
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await marked.waitFor();
        assert.equal(await marked.textContent(), "3");
        assert.match(await page.locator(".editor-message").textContent(), /trailing ','/);
        assert.equal((await api.getDocument(db, "notes/2")).Title, "kept");
        // Fixed, it saves.
        await json.fill('{\n  "Title": "changed"\n}');
        assert.equal(await marked.count(), 0, "typing clears the mark");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Saved notes/2");
        assert.equal((await api.getDocument(db, "notes/2")).Title, "changed");
    });

    suite.test("the server goes away: the Studio says so, and recovers by itself when it is back", async ({ page, api, server, expectError, allowError, screenshot }) => {
        const db = await setup(api, server);
        await api.createDatabase(`${db}_copy`);
        await addTask(api, db, "steady", "loadToCompanies({ Name: this.Name });");
        await page.goto(route("databases/tasks/ongoingTasks", { database: db }));
        await waitForTaskState(page, "steady", "Active");
        const status = page.locator("#server-status");
        assert.equal(await status.textContent(), "");
        const rendersBefore = await page.evaluate(() => window.__corvidStudio.renders);

        expectError(/ERR_CONNECTION_REFUSED/);
        await server.stop();
        await waitFor("the unreachable notice", async () => (await status.textContent()) === "Server unreachable — retrying…");
        assert.ok(await page.evaluate(() => document.body.classList.contains("unreachable")));
        await screenshot("unreachable");
        // An action meanwhile says nothing was sent.
        allowError(/ERR_CONNECTION_REFUSED/);
        await taskCard(page, "steady").getByRole("button", { name: "Disable", exact: true }).click();
        await page.locator("#toasts .toast.error", { hasText: /unreachable; nothing was sent/ }).waitFor();
        await sleep(1500); // a few retries fail

        await server.start();
        await waitFor("the notice cleared", async () => (await status.textContent()) === "", 10_000);
        assert.ok(!(await page.evaluate(() => document.body.classList.contains("unreachable"))));
        // The page rendered again by itself, from fresh data: the task, still enabled.
        await waitFor("the page rendered again", async () => (await page.evaluate(() => window.__corvidStudio.renders)) > rendersBefore);
        await waitForTaskState(page, "steady", "Active");
        const tasks = (await api.requestOk("GET", `/databases/${db}/tasks`)).OngoingTasksList;
        assert.equal(tasks[0].TaskState, "Enabled", "the Disable clicked while away was not sent");
        // And it works: a new company arrives.
        await api.putDocument(db, "companies/3", company("After"));
        await waitFor("companies/3 at the destination", () => api.getDocument(`${db}_copy`, "companies/3"));
    });

    suite.test("the server goes away during an edit: Save says nothing was sent, what was typed stays, Save works once it is back", async ({ page, api, server, allowError }) => {
        const db = await setup(api, server);
        await page.goto(route("databases/tasks/editRavenEtlTask", { database: db }));
        await field(page, "Task name").fill("typed-while-away");
        await field(page, "Connection string").selectOption("to-destination");
        const script = "// typed before the outage\nloadToCompanies({ Name: this.Name });";
        await field(page, "Script of Script #1").fill(script);

        allowError(/ERR_CONNECTION_REFUSED/);
        await server.stop();
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await page.getByRole("alert").filter({ hasText: "nothing was sent" }).waitFor();
        await server.start();
        const status = page.locator("#server-status");
        await waitFor("the notice cleared", async () => (await status.textContent()) === "", 10_000);
        await sleep(500);
        // The form is as it was typed, not re-rendered empty.
        assert.equal(await field(page, "Task name").inputValue(), "typed-while-away");
        assert.equal(await field(page, "Script of Script #1").inputValue(), script);
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Task typed-while-away saved");
        assert.equal(await taskCount(api, db), 1);
    });
});
