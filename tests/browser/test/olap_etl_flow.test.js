"use strict";
// OLAP ETL through the Studio, into a folder of the server's OLAP directory (`<data-dir>/olap`):
// OLAP connection strings on their page (a folder outside the OLAP directory and a bad bucket
// name refused at their fields; an S3 one listed without its secret, edited with the secret
// left as *****); an OLAP ETL task with a new connection string made in the editor, "Test
// script" showing the partition, file and columns, a bad cron refused at the Run frequency
// field, Save starting a run at once (RunFrequency once a year) whose Parquet files appear;
// the task in the list and its details (run frequency and next run, statistics), disable /
// enable, edit, delete; a folder that cannot be written shown as a Configuration error.

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { studioSuite, waitFor } = require("../lib/harness");
const {
    confirm, createDatabaseInUi, field, route, runScriptTest, taskCard, waitForTaskState, waitForToast,
} = require("../lib/studio");

const order = (region, total) => ({ Region: region, Total: total, "@metadata": { "@collection": "Orders" } });
const ORDERS = [["orders/1-A", order("eu", 10)], ["orders/2-A", order("us", 20)], ["orders/3-A", order("eu", 30)]];
const SCRIPT = "loadToOrders(partitionBy(['region', this.Region], ['source', $customPartitionValue]), {\n    Total: this.Total\n});";

/** Every file under `root`, relative, sorted ([] when there is no such folder). */
function filesUnder(root) {
    if (!fs.existsSync(root)) {
        return [];
    }
    return fs.readdirSync(root, { recursive: true })
        .filter(it => fs.statSync(path.join(root, it)).isFile())
        .map(it => it.split(path.sep).join("/"))
        .sort();
}

async function openAddOlapTask(page, database) {
    await page.goto(route("databases/tasks/ongoingTasks", { database }));
    await page.getByRole("button", { name: "Add Task", exact: true }).click();
    await page.getByRole("link", { name: "OLAP ETL", exact: true }).first().click();
    await page.getByRole("heading", { name: "Add OLAP ETL" }).waitFor();
}

async function saveTask(page, name) {
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await waitForToast(page, `Task ${name} saved`);
    await page.waitForURL(/#databases\/tasks\/ongoingTasks/);
    await taskCard(page, name).waitFor();
}

/** The error shown under the field labelled `label`. */
function fieldError(page, label) {
    return page.locator(".field", { has: field(page, label) }).locator(".field-error");
}

describe("OLAP ETL flow", () => {
    const suite = studioSuite();

    suite.test("connection strings: a folder or S3; refused settings shown at their field; the secret never shown", async ({ page, api, allowError, screenshot }) => {
        allowError(/status of 400/);
        const db = "olapcs";
        await page.goto(route("databases"));
        await createDatabaseInUi(page, db);
        await page.goto(route("databases/settings/connectionStrings", { database: db }));
        await page.getByText("No OLAP connection strings.").waitFor();

        // A folder outside the OLAP directory is refused, under the folder's field.
        await page.getByRole("button", { name: "Add connection string", exact: true }).click();
        await field(page, "Type").selectOption("Olap");
        assert.equal(await page.getByRole("button", { name: "Test connection" }).isVisible(), false);
        await field(page, "Name").fill("lake");
        await field(page, "Folder path").fill("/etc/corvid-olap");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await fieldError(page, "Folder path").filter({ hasText: "outside the OLAP directory" }).waitFor();
        await field(page, "Folder path").fill("lake");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Connection string lake saved");
        const local = page.locator('tr[data-connection-string="lake"][data-type="Olap"]');
        await local.waitFor();
        assert.match(await local.textContent(), /Local folder/);

        // S3: a bucket name S3 would refuse is shown under Bucket; then saved, secret hidden.
        await page.getByRole("button", { name: "Add connection string", exact: true }).click();
        await field(page, "Type").selectOption("Olap");
        await field(page, "Name").fill("bucket");
        await field(page, "Destination").selectOption("S3");
        assert.equal(await field(page, "Folder path").isVisible(), false);
        await field(page, "Access key").fill("AKIATEST");
        await field(page, "Secret key").fill("hunter22-secret");
        await field(page, "Region").fill("us-east-1");
        await field(page, "Bucket").fill("Not_A_Bucket");
        await field(page, "Remote folder").fill("exports");
        await field(page, "Custom server URL").fill("http://127.0.0.1:9");
        await field(page, "Force path style").check();
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await fieldError(page, "Bucket").filter({ hasText: "not a valid bucket name" }).waitFor();
        await screenshot("s3");
        await field(page, "Bucket").fill("corvid-lake");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Connection string bucket saved");
        const s3 = page.locator('tr[data-connection-string="bucket"][data-type="Olap"]');
        await s3.waitFor();
        assert.match(await s3.textContent(), /Amazon S3.*corvid-lake\/exports at http:\/\/127\.0\.0\.1:9/);
        const stored = (await api.requestOk("GET", `/databases/${db}/admin/connection-strings`)).OlapConnectionStrings.bucket;
        assert.deepEqual(stored.S3Settings, {
            AwsAccessKey: "AKIATEST", AwsSecretKey: "*****", AwsRegionName: "us-east-1", BucketName: "corvid-lake",
            RemoteFolderName: "exports", CustomServerUrl: "http://127.0.0.1:9", ForcePathStyle: true,
        });
        assert.doesNotMatch(await page.locator("#view").textContent(), /hunter22/);

        // Edit: the secret shows as *****; saved so, the stored one is kept.
        await s3.getByRole("button", { name: "Edit bucket" }).click();
        assert.equal(await field(page, "Destination").inputValue(), "S3");
        assert.equal(await field(page, "Secret key").inputValue(), "*****");
        await field(page, "Remote folder").fill("exports/v2");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Connection string bucket saved");
        await waitFor("the new remote folder listed", async () => /corvid-lake\/exports\/v2/.test(await s3.textContent()));

        await s3.getByRole("button", { name: "Delete bucket" }).click();
        await confirm(page, "Delete", "Delete connection string bucket?");
        await s3.waitFor({ state: "detached" });
    });

    suite.test("task: Test script, a bad cron, a run writes Parquet files; list, details, edit, delete", async ({ page, api, server, allowError, screenshot }) => {
        allowError(/status of 400/);
        const db = "olapshop";
        const TASK = "orders-lake";
        await page.goto(route("databases"));
        await createDatabaseInUi(page, db);
        for (const [id, doc] of ORDERS) {
            await api.putDocument(db, id, doc);
        }
        const table = path.join(server.dataDir, "olap", "lake", "Orders");

        await openAddOlapTask(page, db);
        await field(page, "Task name").fill(TASK);
        await field(page, "Connection string").selectOption("__new__");
        await field(page, "New connection string name").fill("lake");
        assert.equal(await field(page, "Destination").inputValue(), "Local");
        await field(page, "Folder path").fill("/etc/corvid-olap");
        await page.locator(".transform").first().getByRole("button", { name: "Remove collection Orders" }).waitFor();
        await field(page, "Script of Script #1").fill(SCRIPT);
        await field(page, "Custom partition value").fill("eu-west");
        await page.getByRole("button", { name: "Add table", exact: true }).click();
        await page.getByRole("textbox", { name: "OLAP table name", exact: true }).fill("Orders");
        await page.getByRole("textbox", { name: "Document id column", exact: true }).fill("OrderId");
        // A preset fills the cron field and the next run is shown.
        await field(page, "Preset").selectOption("0 0 * * *");
        assert.equal(await field(page, "Run frequency (cron, UTC)").inputValue(), "0 0 * * *");
        assert.match(await page.getByTestId("next-run").textContent(), /^Next run: \d{4}-\d\d-\d\d 00:00 UTC\.$/);

        // The folder outside the OLAP directory: refused, under the new connection's folder.
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await fieldError(page, "Folder path").filter({ hasText: "outside the OLAP directory" }).waitFor();
        await field(page, "Folder path").fill("lake");

        // Test script before saving: the connection string goes inline; nothing is written.
        const output = await runScriptTest(page, "orders/2-A");
        await output.getByText("Rows that would be written").waitFor();
        const partition = output.locator('[data-partition="Orders/region=us/source=eu-west"]');
        await partition.waitFor();
        const shown = await partition.textContent();
        assert.match(shown, /File: Orders\/region=us\/source=eu-west\/olapshop_orders-lake_/);
        assert.match(shown, /OrderId/);
        assert.match(shown, /orders\/2-A/);
        assert.match(shown, /Total/);
        assert.deepEqual(filesUnder(table), [], "a test writes nothing");

        // A bad cron: refused by the server, shown under Run frequency; nothing saved.
        await field(page, "Run frequency (cron, UTC)").fill("*/5 25 * * *");
        assert.equal(await page.getByTestId("next-run").textContent(), "");
        await page.getByRole("button", { name: "Save", exact: true }).click();
        await fieldError(page, "Run frequency (cron, UTC)").filter({ hasText: "hour `25`" }).waitFor();
        assert.equal((await api.requestOk("GET", `/databases/${db}/tasks`)).OngoingTasksList.length, 0);
        await screenshot("editor");

        // Once a year: the only run is the one the save starts.
        await field(page, "Run frequency (cron, UTC)").fill("0 0 1 1 *");
        await saveTask(page, TASK);
        const card = taskCard(page, TASK);
        await waitForTaskState(page, TASK, "Active");
        assert.equal(await card.locator(".badge.type").textContent(), "OLAP ETL");
        assert.equal(await card.locator(".dest").textContent(), "Local: lake");
        const files = await waitFor("the run's Parquet files", () => {
            const found = filesUnder(table).filter(it => it.endsWith(".parquet"));
            return found.length === 2 ? found : null;
        }, 30_000);
        assert.deepEqual(files.map(it => it.split("/").slice(0, 2).join("/")),
            ["region=eu/source=eu-west", "region=us/source=eu-west"]);
        for (const file of files) {
            const bytes = fs.readFileSync(path.join(table, file));
            assert.equal(bytes.subarray(0, 4).toString(), "PAR1", file);
            assert.equal(bytes.subarray(-4).toString(), "PAR1", file);
        }
        await waitFor("the run published (progress up to date)", async () =>
            (await card.locator('.transform-row[data-transformation="Script #1"]').textContent()).includes("up to date"), 20_000);

        // A new document waits for the next run; the row says when that is.
        await api.putDocument(db, "orders/4-A", order("eu", 40));
        const nextYear = new Date().getUTCFullYear() + 1;
        await waitFor("the new document left for the next run", async () =>
            (await card.locator('.transform-row[data-transformation="Script #1"]').textContent())
                .includes(`next run ${nextYear}-01-01 00:00 UTC`));
        await screenshot("list");

        // Details: the schedule and the statistics of the run.
        await card.getByRole("link", { name: TASK, exact: true }).click();
        await page.getByRole("heading", { name: `OLAP ETL: ${TASK}` }).waitFor();
        const meta = page.locator("dl.meta-list");
        await waitFor("the run frequency", async () => (await meta.textContent()).includes(`0 0 1 1 * (UTC) · next run ${nextYear}-01-01 00:00 UTC`));
        assert.match(await meta.textContent(), /Local: lake/);
        assert.match(await meta.textContent(), /Custom partition valueeu-west/);
        assert.match(await meta.textContent(), /Orders \(id column OrderId\)/);
        const stats = page.getByRole("table", { name: "Statistics" }).locator('tr[data-transformation="Script #1"]');
        await waitFor("3 extracted", async () => (await stats.locator("td").nth(1).textContent()) === "3");
        await page.getByText("No errors.").waitFor();
        await screenshot("details");

        const state = page.locator("h1 + .badge");
        await page.getByRole("button", { name: "Disable", exact: true }).click();
        await waitFor("disabled", async () => (await state.textContent()) === "Disabled");
        await page.getByRole("button", { name: "Enable", exact: true }).click();
        await waitFor("enabled", async () => (await state.textContent()) === "Active");

        // Edit shows what was saved.
        await page.getByRole("link", { name: "Edit", exact: true }).click();
        await page.getByRole("heading", { name: `Edit OLAP ETL: ${TASK}` }).waitFor();
        assert.equal(await field(page, "Connection string").inputValue(), "lake");
        assert.equal(await field(page, "Run frequency (cron, UTC)").inputValue(), "0 0 1 1 *");
        assert.equal(await field(page, "Custom partition value").inputValue(), "eu-west");
        assert.equal(await page.getByRole("textbox", { name: "OLAP table name", exact: true }).inputValue(), "Orders");
        await field(page, "Preset").selectOption("*/5 * * * *");
        await saveTask(page, TASK);
        const saved = (await api.requestOk("GET", `/databases/${db}/tasks`)).OngoingTasksList.find(it => it.TaskName === TASK);
        assert.equal(saved.TaskType, "OlapEtl");
        assert.equal(saved.Configuration.RunFrequency, "*/5 * * * *");
        assert.deepEqual(saved.Configuration.OlapTables, [{ TableName: "Orders", DocumentIdColumn: "OrderId" }]);

        await card.getByRole("button", { name: "Delete", exact: true }).click();
        await confirm(page, "Delete", `Delete task ${TASK}?`);
        await card.waitFor({ state: "detached" });
    });

    suite.test("a folder that cannot be written: a Configuration error on the card and in the details", async ({ page, api, server }) => {
        const db = "olapblocked";
        const TASK = "blocked-lake";
        await api.createDatabase(db);
        await api.putDocument(db, "orders/1-A", order("eu", 10));
        // A file where the folder should be: nothing can be written under it.
        fs.writeFileSync(path.join(server.dataDir, "olap", "blocked"), "not a folder");
        await api.requestOk("PUT", `/databases/${db}/admin/connection-strings`,
            { Type: "Olap", Name: "blocked", LocalSettings: { FolderPath: "blocked/lake" } });
        await api.requestOk("PUT", `/databases/${db}/admin/etl`, {
            EtlType: "Olap", Name: TASK, ConnectionStringName: "blocked", RunFrequency: "0 0 1 1 *",
            Transforms: [{ Name: "Script1", Collections: ["Orders"], Script: "loadToOrders(noPartition(), { Total: this.Total });" }],
        });
        await page.goto(route("databases/tasks/ongoingTasks", { database: db }));
        const card = taskCard(page, TASK);
        await waitFor("the load error on the card", async () => /^Configuration: failed to read folder .*blocked/.test(await card.locator(".task-error").textContent()), 30_000);
        assert.equal(await card.getByRole("status").textContent(), "Reconnect (fallback)");
        await card.getByRole("link", { name: TASK, exact: true }).click();
        const errors = page.getByRole("table", { name: "Errors" });
        await waitFor("the load error in the details", async () => /Load \(Configuration\).*blocked/.test(await errors.textContent()));
    });
});
