"use strict";
// SQL ETL through the Studio, into a SQLite file of the server's sqlite directory and into the
// machine's PostgreSQL (127.0.0.1:5432, user postgres, database test; a schema of its own,
// dropped at the end): add the task with a new connection string and a table, see "Test
// script" show the SQL (and run it rolled back), Save, rows arrive; then filter, disable /
// enable, reset and delete, checked in the database itself (sqlite3 and psql command lines).

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const path = require("node:path");
const { studioSuite, waitFor, sleep } = require("../lib/harness");
const {
    confirm, createDatabaseInUi, field, postgresAvailable, psql, route, runScriptTest, sqlite,
    staysFalse, taskCard, waitForTaskState, waitForToast,
} = require("../lib/studio");

const SHOP = "shop";
const COMPANIES = [
    ["companies/1-A", { Name: "Alfreds Futterkiste", Country: "Germany" }],
    ["companies/2-A", { Name: "Ana Trujillo", Country: "Mexico" }],
    ["companies/3-A", { Name: "Around the Horn", Country: "UK" }],
];
const company = (name, country) => ({ Name: name, Country: country, "@metadata": { "@collection": "Companies" } });

/** Fills the Add SQL ETL page: name, new connection string, one table, the script. */
async function fillSqlTask(page, { name, connectionName, factory, connectionString, table, script }) {
    await field(page, "Task name").fill(name);
    await field(page, "Connection string").selectOption("__new__");
    await field(page, "New connection string name").fill(connectionName);
    await field(page, "Factory").selectOption(factory);
    await field(page, "SQL connection string").fill(connectionString);
    await page.getByRole("textbox", { name: "Table name", exact: true }).fill(table);
    await page.getByRole("textbox", { name: "Document id column", exact: true }).fill("Id");
    await page.locator(".transform").first().getByRole("button", { name: "Remove collection Companies" }).waitFor();
    await field(page, "Script of Script #1").fill(script);
}

async function openAddSqlTask(page) {
    await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
    await page.getByRole("button", { name: "Add Task", exact: true }).click();
    await page.getByRole("link", { name: "SQL ETL", exact: true }).first().click();
    await page.getByRole("heading", { name: "Add SQL ETL" }).waitFor();
}

async function saveTask(page, name) {
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await waitForToast(page, `Task ${name} saved`);
    await page.waitForURL(/#databases\/tasks\/ongoingTasks/);
    await taskCard(page, name).waitFor();
}

describe("SQL ETL flow", () => {
    const suite = studioSuite();
    const SQLITE_TASK = "companies-to-sqlite";
    let sqliteFile;
    const rowsOf = () => sqlite(sqliteFile, 'SELECT "Id", "Name", "Country" FROM "Companies" ORDER BY "Id"');

    suite.test("SQLite: a new task's Test script shows the SQL; after Save the rows arrive", async ({ page, api, server }) => {
        await page.goto(route("databases"));
        await createDatabaseInUi(page, SHOP);
        for (const [id, doc] of COMPANIES) {
            await api.putDocument(SHOP, id, company(doc.Name, doc.Country));
        }
        sqliteFile = path.join(server.dataDir, "sqlite", "reporting.db");
        sqlite(sqliteFile, 'CREATE TABLE "Companies" ("Id" TEXT PRIMARY KEY, "Name" TEXT, "Country" TEXT)');

        await openAddSqlTask(page);
        await fillSqlTask(page, {
            name: SQLITE_TASK, connectionName: "reporting", factory: "Microsoft.Data.Sqlite",
            connectionString: "Data Source=reporting.db", table: "Companies",
            script: "loadToCompanies({\n    Name: this.Name,\n    Country: this.Country\n});",
        });
        const output = await runScriptTest(page, "companies/1-A");
        await output.getByText("SQL that would run").waitFor();
        const sql = await output.locator(".sql-table").textContent();
        assert.match(sql, /DELETE FROM "Companies" WHERE "Id"/);
        assert.match(sql, /INSERT INTO "Companies" \("Name", "Country", "Id"\)|INSERT INTO "Companies"/);
        assert.match(sql, /Alfreds Futterkiste/);
        assert.match(sql, /companies\/1-A/);
        assert.deepEqual(rowsOf(), [], "a test writes nothing");

        await saveTask(page, SQLITE_TASK);
        await waitForTaskState(page, SQLITE_TASK, "Active");
        assert.match(await taskCard(page, SQLITE_TASK).locator(".dest").textContent(), /SQLite · .*reporting\.db/);
        await waitFor("3 rows in SQLite", () => rowsOf().length === 3);
        assert.deepEqual(rowsOf(), COMPANIES.map(([id, doc]) => [id, doc.Name, doc.Country]));
    });

    suite.test("SQLite: Test with roll back, filter, disable / enable, reset, delete", async ({ page, api }) => {
        assert.ok(sqliteFile, "the previous test made the file");
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        const card = taskCard(page, SQLITE_TASK);
        await card.getByRole("link", { name: "Edit", exact: true }).click();
        await page.getByRole("heading", { name: `Edit SQL ETL: ${SQLITE_TASK}` }).waitFor();
        assert.equal(await page.getByRole("textbox", { name: "Table name", exact: true }).inputValue(), "Companies");
        // Run for real and roll back: the SQL is shown, the table is unchanged.
        await field(page, "Script of Script #1").fill(
            "loadToCompanies({\n    Name: this.Name + ' (rolled back)',\n    Country: this.Country\n});");
        const output = await runScriptTest(page, "companies/2-A", { rollback: true });
        assert.match(await output.locator(".sql-table").textContent(), /INSERT INTO "Companies"[\s\S]*Ana Trujillo \(rolled back\)/);
        assert.equal(await output.locator(".error-box").count(), 0, await output.textContent());
        assert.ok(!rowsOf().some(row => row[1].includes("rolled back")), "the rolled-back SQL left nothing");
        assert.equal(rowsOf().length, 3);

        await field(page, "Script of Script #1").fill(
            "if (this.Country === 'UK') return;\nloadToCompanies({\n    Name: this.Name,\n    Country: this.Country\n});");
        const filtered = await runScriptTest(page, "companies/3-A");
        // Filtered out: only the delete of its old rows, no insert.
        const filteredSql = await filtered.locator(".sql-table").textContent();
        assert.match(filteredSql, /DELETE FROM "Companies" WHERE "Id"[\s\S]*companies\/3-A/);
        assert.doesNotMatch(filteredSql, /INSERT/);
        await saveTask(page, SQLITE_TASK);

        // SQL ETL deletes a document's rows before inserting its new ones: a filtered change
        // removes the row.
        await api.putDocument(SHOP, "companies/3-A", company("Around the Horn Ltd", "UK"));
        await waitFor("the UK row gone", () => !rowsOf().some(row => row[0] === "companies/3-A"));

        // Disable: a change waits; Enable: it arrives.
        await waitForTaskState(page, SQLITE_TASK, "Active");
        await card.getByRole("button", { name: "Disable", exact: true }).click();
        await waitForTaskState(page, SQLITE_TASK, "Disabled");
        await api.putDocument(SHOP, "companies/2-A", company("Ana Trujillo Emparedados", "Mexico"));
        await staysFalse("a disabled task must write nothing",
            () => rowsOf().some(row => row[1] === "Ana Trujillo Emparedados"), 2500);
        await card.getByRole("button", { name: "Enable", exact: true }).click();
        await waitForTaskState(page, SQLITE_TASK, "Active");
        await waitFor("the change in SQLite", () => rowsOf().some(row => row[1] === "Ana Trujillo Emparedados"));

        // Reset: rows removed behind the task's back come back (and the filtered one does not).
        sqlite(sqliteFile, 'DELETE FROM "Companies"');
        await sleep(1000);
        assert.deepEqual(rowsOf(), [], "nothing is sent again before the reset");
        await card.getByRole("button", { name: "Reset", exact: true }).click();
        await confirm(page, "Reset", `Reset task ${SQLITE_TASK}?`);
        await waitForToast(page, `Task ${SQLITE_TASK} reset`);
        await waitFor("2 rows again", () => rowsOf().length === 2);
        assert.deepEqual(rowsOf().map(row => row[0]), ["companies/1-A", "companies/2-A"]);

        await card.getByRole("button", { name: "Delete", exact: true }).click();
        await confirm(page, "Delete", `Delete task ${SQLITE_TASK}?`);
        await card.waitFor({ state: "detached" });
        await api.putDocument(SHOP, "companies/1-A", company("Alfreds (after delete)", "Germany"));
        await staysFalse("a deleted task must write nothing", () => rowsOf().some(row => row[1] === "Alfreds (after delete)"), 1500);
    });

    suite.test("SQL task options: tables added and removed, insert only, quoting, timeout — saved and shown again", async ({ page, api }) => {
        await openAddSqlTask(page);
        await field(page, "Task name").fill("options");
        await field(page, "Connection string").selectOption("reporting");
        const names = page.getByRole("textbox", { name: "Table name", exact: true });
        const columns = page.getByRole("textbox", { name: "Document id column", exact: true });
        await names.nth(0).fill("Companies");
        await columns.nth(0).fill("Id");
        await page.getByRole("button", { name: "Add table", exact: true }).click();
        await names.nth(1).fill("Scratch");
        await columns.nth(1).fill("DocId");
        await page.getByRole("button", { name: "Add table", exact: true }).click();
        await names.nth(2).fill("CompanyLog");
        await columns.nth(2).fill("CompanyId");
        await page.getByRole("checkbox", { name: "Insert only", exact: true }).nth(2).check();
        await page.locator(".tables-row").nth(1).getByRole("button", { name: "Remove table", exact: true }).click();
        assert.equal(await names.count(), 2);
        await field(page, "Quote table names").uncheck();
        await field(page, "Parameterize deletes").uncheck();
        await field(page, "Command timeout (seconds)").fill("7");
        await field(page, "Script of Script #1").fill("loadToCompanies({ Name: this.Name });\nloadToCompanyLog({ Name: this.Name });");
        await saveTask(page, "options");

        const saved = (await api.requestOk("GET", `/databases/${SHOP}/tasks`)).OngoingTasksList
            .find(task => task.TaskName === "options").Configuration;
        assert.deepEqual(saved.SqlTables.map(t => [t.TableName, t.DocumentIdColumn, t.InsertOnlyMode]),
            [["Companies", "Id", false], ["CompanyLog", "CompanyId", true]]);
        assert.equal(saved.QuoteTables, false);
        assert.equal(saved.ParameterizeDeletes, false);
        assert.equal(saved.CommandTimeout, 7);

        await taskCard(page, "options").getByRole("link", { name: "Edit", exact: true }).click();
        await page.getByRole("heading", { name: "Edit SQL ETL: options" }).waitFor();
        assert.deepEqual(await names.evaluateAll(els => els.map(el => el.value)), ["Companies", "CompanyLog"]);
        assert.deepEqual(await page.getByRole("checkbox", { name: "Insert only", exact: true }).evaluateAll(els => els.map(el => el.checked)), [false, true]);
        assert.equal(await field(page, "Quote table names").isChecked(), false);
        assert.equal(await field(page, "Parameterize deletes").isChecked(), false);
        assert.equal(await field(page, "Command timeout (seconds)").inputValue(), "7");
        // Emptied, the timeout is left out (the server's default).
        await field(page, "Command timeout (seconds)").fill("");
        await saveTask(page, "options");
        const again = (await api.requestOk("GET", `/databases/${SHOP}/tasks`)).OngoingTasksList
            .find(task => task.TaskName === "options").Configuration;
        assert.ok(again.CommandTimeout === undefined || again.CommandTimeout === null, `CommandTimeout ${again.CommandTimeout}`);
        await api.requestOk("DELETE", `/databases/${SHOP}/admin/tasks?id=${again.TaskId}&type=SqlEtl`);
    });

    suite.test("PostgreSQL: Test script runs the SQL rolled back; after Save the rows arrive", async ({ page, t }) => {
        if (!postgresAvailable()) {
            t.skip("no PostgreSQL at 127.0.0.1:5432 (user postgres, database test)");
            return;
        }
        const schema = `corvid_browser_${crypto.randomBytes(4).toString("hex")}`;
        const table = `${schema}.Companies`;
        psql(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}"."Companies" ("Id" text PRIMARY KEY, "Name" text, "Country" text)`);
        const rows = () => psql(`SELECT "Id", "Name", "Country" FROM "${schema}"."Companies" ORDER BY "Id"`);
        try {
            const name = "companies-to-postgres";
            await openAddSqlTask(page);
            await fillSqlTask(page, {
                name, connectionName: "postgres-test", factory: "Npgsql",
                connectionString: "Host=127.0.0.1;Port=5432;Database=test;Username=postgres", table,
                script: `loadTo('${table}', {\n    Name: this.Name,\n    Country: this.Country\n});`,
            });
            const output = await runScriptTest(page, "companies/1-A");
            const sql = await output.locator(".sql-table").textContent();
            // PostgreSQL rows go in with COPY (the statement Corvid really runs).
            assert.match(sql, new RegExp(`DELETE FROM "${schema}"\\."Companies"`));
            assert.match(sql, new RegExp(`(INSERT INTO|COPY) "${schema}"\\."Companies"`));
            assert.match(sql, /Alfreds/);
            assert.deepEqual(rows(), [], "a test writes nothing");

            await saveTask(page, name);
            await waitForTaskState(page, name, "Active");
            assert.match(await taskCard(page, name).locator(".dest").textContent(), /127\.0\.0\.1.*test/);
            await waitFor("3 rows in PostgreSQL", () => rows().length === 3);
            const ids = rows().map(row => row[0]);
            assert.deepEqual(ids, ["companies/1-A", "companies/2-A", "companies/3-A"]);

            // With the connection string saved, Test can run the SQL and roll it back.
            await taskCard(page, name).getByRole("link", { name: "Edit", exact: true }).click();
            await page.getByRole("heading", { name: `Edit SQL ETL: ${name}` }).waitFor();
            await field(page, "Script of Script #1").fill(`loadTo('${table}', {\n    Name: this.Name + ' (rolled back)',\n    Country: this.Country\n});`);
            const rolled = await runScriptTest(page, "companies/2-A", { rollback: true });
            assert.match(await rolled.locator(".sql-table").textContent(), /\(rolled back\)/);
            assert.equal(await rolled.locator(".error-box").count(), 0, await rolled.textContent());
            assert.ok(!rows().some(row => row[1].includes("rolled back")), "the rolled-back SQL left nothing");
            await page.getByRole("link", { name: "Cancel", exact: true }).click();

            const card = taskCard(page, name);
            await card.getByRole("button", { name: "Delete", exact: true }).click();
            await confirm(page, "Delete", `Delete task ${name}?`);
            await card.waitFor({ state: "detached" });
        } finally {
            psql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        }
    });
});
