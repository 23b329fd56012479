"use strict";
// The RavenDB book's RavenDB ETL flow, from an empty server, through the Studio only: create
// `shop` and `shipping`, add Companies, add a RavenDB ETL task (new connection string inline),
// see the documents arrive, filter some out in the script (tested first with "Test script"),
// disable / enable, reset, delete. Each step checks through the page and through the API.
// The tests run in order and share the server (one flow cut in steps).

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const { studioSuite, waitFor, sleep } = require("../lib/harness");
const {
    confirm, createDatabaseInUi, createDocumentInUi, editDocumentInUi, field, route, runScriptTest, staysFalse, taskCard,
    waitForTaskState, waitForToast,
} = require("../lib/studio");

const SHOP = "shop";
const SHIPPING = "shipping";
const TASK = "shop-to-shipping";
const COMPANIES = [
    ["companies/1-A", { Name: "Alfreds Futterkiste", Country: "Germany" }],
    ["companies/2-A", { Name: "Ana Trujillo", Country: "Mexico" }],
    ["companies/3-A", { Name: "Around the Horn", Country: "UK" }],
    ["companies/4-A", { Name: "Berglunds snabbköp", Country: "Sweden" }],
];
const FIRST_SCRIPT = "loadToCompanies({\n    Name: this.Name,\n    Country: this.Country\n});";
const FILTER_SCRIPT = "if (this.Country === 'UK') return;\noutput('shipping to ' + this.Country);\n" + FIRST_SCRIPT;

describe("RavenDB ETL flow", () => {
    const suite = studioSuite();

    suite.test("creates shop and shipping on an empty server", async ({ page, api }) => {
        assert.deepEqual(await api.databaseNames(), [], "the server must start empty");
        await page.goto(route("databases"));
        await page.getByText("No databases yet").waitFor();
        await createDatabaseInUi(page, SHOP);
        await createDatabaseInUi(page, SHIPPING);
        await waitForToast(page, `Database ${SHIPPING} created`);
        assert.deepEqual((await api.databaseNames()).sort(), [SHIPPING, SHOP]);
        // The picker knows both.
        const options = await page.locator("#database-picker option").allTextContents();
        assert.ok(options.includes(SHOP) && options.includes(SHIPPING), `picker: ${options}`);
    });

    suite.test("adds Companies documents on the documents page", async ({ page, api }) => {
        for (const [id, doc] of COMPANIES) {
            await createDocumentInUi(page, SHOP, id, "Companies", doc);
        }
        // The list shows them, with the collection's count.
        await page.goto(route("databases/documents", { database: SHOP, collection: "Companies" }));
        await page.locator(`tr[data-id="${COMPANIES[3][0]}"]`).waitFor();
        assert.equal(await page.locator("table[aria-label=Documents] tbody tr").count(), COMPANIES.length);
        assert.match(await page.locator('nav[aria-label=Collections] a[data-collection="Companies"]').textContent(), new RegExp(`Companies\\s*${COMPANIES.length}`));
        const saved = await api.query(SHOP, "from Companies");
        assert.equal(saved.length, COMPANIES.length);
        for (const [id, doc] of COMPANIES) {
            const got = await api.getDocument(SHOP, id);
            assert.equal(got.Name, doc.Name);
            assert.equal(got["@metadata"]["@collection"], "Companies");
        }
    });

    suite.test("adds a RavenDB ETL task with a new connection string; the documents arrive", async ({ page, api, server }) => {
        await page.goto(route("databases"));
        await page.locator("#database-picker").selectOption(SHOP);
        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Ongoing Tasks", exact: true }).click();
        await page.getByText("No ongoing tasks yet.").waitFor();
        await page.getByRole("button", { name: "Add Task", exact: true }).click();
        await page.getByRole("link", { name: "RavenDB ETL", exact: true }).first().click();
        await page.getByRole("heading", { name: "Add RavenDB ETL" }).waitFor();
        assert.match(page.url(), /#databases\/tasks\/editRavenEtlTask\?database=shop$/);

        await field(page, "Task name").fill(TASK);
        // No connection string yet: "Create a new connection string" is chosen.
        assert.equal(await field(page, "Connection string").inputValue(), "__new__");
        await field(page, "New connection string name").fill("shipping-here");
        await field(page, "Destination database").fill(SHIPPING);
        assert.equal(await field(page, "Discovery URLs (one per line)").inputValue(), server.url,
            "the discovery URL is prefilled with the Studio's origin");
        // The database has Companies: the first transformation starts with it.
        const transform = page.locator(".transform").first();
        await transform.getByRole("button", { name: "Remove collection Companies" }).waitFor();
        assert.equal(await field(page, "Transformation name").inputValue(), "Script #1");
        await field(page, "Script of Script #1").fill(FIRST_SCRIPT);
        await page.getByRole("button", { name: "Save", exact: true }).click();

        await waitForToast(page, `Task ${TASK} saved`);
        await page.waitForURL(/#databases\/tasks\/ongoingTasks\?database=shop$/);
        const card = taskCard(page, TASK);
        await card.waitFor();
        await waitForTaskState(page, TASK, "Active");
        assert.match(await card.locator(".dest").textContent(), new RegExp(`${server.url.replace(/[.]/g, "\\.")} → ${SHIPPING}`));

        // Every company arrives, reshaped by the script.
        for (const [id, doc] of COMPANIES) {
            const copy = await waitFor(`${id} in ${SHIPPING}`, () => api.getDocument(SHIPPING, id));
            assert.equal(copy.Name, doc.Name);
            assert.equal(copy.Country, doc.Country);
            assert.equal(copy["@metadata"]["@collection"], "Companies");
        }
        // The documents page of shipping shows them.
        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Databases", exact: true }).click();
        await page.locator(`tr[data-database="${SHIPPING}"]`).getByRole("link", { name: SHIPPING, exact: true }).click();
        await page.waitForURL(/#databases\/documents\?database=shipping$/);
        await page.locator('nav[aria-label=Collections] a[data-collection="Companies"]').click();
        for (const [id, doc] of COMPANIES) {
            const row = page.locator(`tr[data-id="${id}"]`);
            await row.waitFor();
            assert.match(await row.locator(".preview").textContent(), new RegExp(`Name: "${doc.Name}", Country: "${doc.Country}"`));
        }
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        // The progress row shows nothing left.
        const row = card.locator('[data-transformation="Script #1"]');
        await waitFor("0 documents left", async () => (await row.locator(".num").first().textContent()) === "0");
        assert.equal((await row.locator(".num").nth(3).textContent()), String(COMPANIES.length));
    });

    suite.test("filters a company out: Test script shows it, Save, it is sent no more", async ({ page, api, screenshot }) => {
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        await taskCard(page, TASK).getByRole("link", { name: "Edit", exact: true }).click();
        await page.getByRole("heading", { name: `Edit RavenDB ETL: ${TASK}` }).waitFor();
        // The saved task is shown as saved.
        assert.equal(await field(page, "Task name").inputValue(), TASK);
        assert.equal(await field(page, "Connection string").inputValue(), "shipping-here");
        assert.equal(await field(page, "Script of Script #1").inputValue(), FIRST_SCRIPT);

        await field(page, "Script of Script #1").fill(FILTER_SCRIPT);
        // A UK company: nothing would be sent.
        let output = await runScriptTest(page, "companies/3-A");
        await output.getByText("Commands that would be sent").waitFor();
        assert.match(await output.textContent(), /Nothing: the script loads nothing for this document/);
        // A German one: a PUT of the reshaped document, and the output() line.
        output = await runScriptTest(page, "companies/1-A");
        const commands = JSON.parse(await output.locator("pre.out").first().textContent());
        const put = commands.find(command => command.Type === "PUT");
        assert.ok(put, `no PUT among ${JSON.stringify(commands)}`);
        assert.equal(put.Document.Name, "Alfreds Futterkiste");
        assert.equal(put.Document.Country, "Germany");
        assert.equal((await output.locator("pre.debug-output").textContent()).trim(), "shipping to Germany");
        await screenshot("test-script");

        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, `Task ${TASK} saved`);
        await page.waitForURL(/ongoingTasks/);
        const saved = await api.requestOk("GET", `/databases/${SHOP}/tasks`);
        const task = saved.OngoingTasksList.find(it => it.TaskName === TASK);
        assert.ok(task, "the task is still there");

        // Saving without a reset sends nothing again: the old UK copy stays. When the UK company
        // changes, the script loads nothing for it; RavenDB ETL deletes before it puts only for
        // loads into another collection (delete by prefix) — a copy in the same collection is
        // simply overwritten by the next PUT — so the old copy stays as it was, not updated.
        assert.ok(await api.getDocument(SHIPPING, "companies/3-A"), "the old UK copy is still there");
        await editDocumentInUi(page, SHOP, "companies/3-A", { Name: "Around the Horn Ltd", Country: "UK" });
        // A new UK company never arrives; a new Swiss one does (so the task did run).
        await createDocumentInUi(page, SHOP, "companies/5-A", "Companies", { Name: "Seven Seas", Country: "UK" });
        await createDocumentInUi(page, SHOP, "companies/6-A", "Companies", { Name: "Richter", Country: "Switzerland" });
        await waitFor("companies/6-A in shipping", () => api.getDocument(SHIPPING, "companies/6-A"));
        assert.equal(await api.getDocument(SHIPPING, "companies/5-A"), null);
        // companies/3-A changed before 5-A and 6-A: the task is past it, and it was filtered.
        assert.equal((await api.getDocument(SHIPPING, "companies/3-A")).Name, "Around the Horn");
        // The others were left as they were.
        assert.equal((await api.getDocument(SHIPPING, "companies/1-A")).Name, "Alfreds Futterkiste");
    });

    suite.test("Disable stops the task, Enable sends what changed meanwhile", async ({ page, api }) => {
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        const card = taskCard(page, TASK);
        await waitForTaskState(page, TASK, "Active");
        await card.getByRole("button", { name: "Disable", exact: true }).click();
        await waitForToast(page, `Task ${TASK} disabled`);
        await waitForTaskState(page, TASK, "Disabled");
        await card.getByRole("button", { name: "Enable", exact: true }).waitFor();

        await editDocumentInUi(page, SHOP, "companies/2-A", { Name: "Ana Trujillo Emparedados", Country: "Mexico" });
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        await staysFalse("a disabled task must send nothing",
            async () => (await api.getDocument(SHIPPING, "companies/2-A")).Name !== "Ana Trujillo", 3000);
        // The list shows the change waiting.
        const docsLeft = card.locator('[data-transformation="Script #1"] .num').first();
        await waitFor("1 document left", async () => (await docsLeft.textContent()) === "1");

        await card.getByRole("button", { name: "Enable", exact: true }).click();
        await waitForToast(page, `Task ${TASK} enabled`);
        await waitForTaskState(page, TASK, "Active");
        await waitFor("the change in shipping",
            async () => (await api.getDocument(SHIPPING, "companies/2-A")).Name === "Ana Trujillo Emparedados");
        await waitFor("0 documents left", async () => (await docsLeft.textContent()) === "0");
    });

    suite.test("Reset (confirmed) sends everything again", async ({ page, api }) => {
        // A copy removed at the destination comes back only when the task starts over.
        await page.goto(route("databases/documents", { database: SHIPPING, collection: "Companies" }));
        await page.getByRole("checkbox", { name: "Select companies/4-A", exact: true }).check();
        await page.getByRole("button", { name: "Delete selected (1)", exact: true }).click();
        await confirm(page, "Delete", "Delete companies/4-A?");
        await waitForToast(page, "Deleted companies/4-A");
        await page.locator('tr[data-id="companies/4-A"]').waitFor({ state: "detached" });
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        const card = taskCard(page, TASK);
        await waitForTaskState(page, TASK, "Active");
        await sleep(1500);
        assert.equal(await api.getDocument(SHIPPING, "companies/4-A"), null, "nothing is sent before the reset");

        // Cancel first: nothing happens.
        await card.getByRole("button", { name: "Reset", exact: true }).click();
        await confirm(page, "Cancel", `Reset task ${TASK}?`);
        await sleep(1500);
        assert.equal(await api.getDocument(SHIPPING, "companies/4-A"), null, "a cancelled reset must not reset");

        await card.getByRole("button", { name: "Reset", exact: true }).click();
        await confirm(page, "Reset", `Reset task ${TASK}?`);
        await waitForToast(page, `Task ${TASK} reset`);
        const copy = await waitFor("companies/4-A back in shipping", () => api.getDocument(SHIPPING, "companies/4-A"));
        assert.equal(copy.Name, "Berglunds snabbköp");
        // Still filtered after the reset: the UK ones are not sent (the old copy of 3-A stays old).
        await waitFor("the reset run to finish", async () => (await taskCard(page, TASK)
            .locator('[data-transformation="Script #1"] .num').first().textContent()) === "0");
        assert.equal((await api.getDocument(SHIPPING, "companies/3-A")).Name, "Around the Horn");
        assert.equal(await api.getDocument(SHIPPING, "companies/5-A"), null);
    });

    suite.test("Delete (confirmed) removes the task from the list", async ({ page, api }) => {
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        const card = taskCard(page, TASK);
        await card.waitFor();
        await card.getByRole("button", { name: "Delete", exact: true }).click();
        await confirm(page, "Delete", `Delete task ${TASK}?`);
        await waitForToast(page, `Task ${TASK} deleted`);
        await card.waitFor({ state: "detached" });
        await page.getByText("No ongoing tasks yet.").waitFor();
        const tasks = await api.requestOk("GET", `/databases/${SHOP}/tasks`);
        assert.equal(tasks.OngoingTasksList.length, 0);
        // What it sent stays at the destination; nothing more is sent.
        assert.ok(await api.getDocument(SHIPPING, "companies/1-A"));
        await createDocumentInUi(page, SHOP, "companies/7-A", "Companies", { Name: "Wolski", Country: "Poland" });
        await staysFalse("a deleted task must send nothing", () => api.getDocument(SHIPPING, "companies/7-A"), 2000);
    });

    suite.test("the task editor: renamed and added transformations, collection chips, all documents", async ({ page, api }) => {
        await page.goto(route("databases/tasks/editRavenEtlTask", { database: SHOP }));
        await field(page, "Task name").fill("editor-check");
        await field(page, "Connection string").selectOption("shipping-here");
        // Rename the first transformation: its script editor and the Test choice follow.
        await field(page, "Transformation name").fill("Companies out");
        const firstScript = field(page, "Script of Companies out");
        await firstScript.fill("output('seen ' + this.Name);\nloadToCompanies({ Name: this.Name });");
        const output = await runScriptTest(page, "companies/1-A", { transformation: "Companies out" });
        assert.equal((await output.locator("pre.debug-output").textContent()).trim(), "seen Alfreds Futterkiste");

        // A second one: no collection yet; add Orders with the chip input, then switch to all documents.
        await page.getByRole("button", { name: "Add transformation", exact: true }).click();
        const second = page.locator(".transform").nth(1);
        assert.equal(await second.getByLabel("Transformation name", { exact: true }).inputValue(), "Script #2");
        await second.getByPlaceholder("Add a collection").fill("Orders");
        await second.getByRole("button", { name: "Add collection", exact: true }).click();
        await second.getByRole("button", { name: "Remove collection Orders" }).waitFor();
        await second.getByPlaceholder("Add a collection").fill("Employees");
        await second.getByPlaceholder("Add a collection").press("Enter");
        await second.getByRole("button", { name: "Remove collection Orders" }).click();
        await second.getByRole("button", { name: "Remove collection Employees" }).waitFor();
        assert.equal(await second.getByRole("button", { name: "Remove collection Orders" }).count(), 0);
        await field(page, "Script of Script #2").fill("loadToEverything({ Id: id(this) });");
        // A third, removed again.
        await page.getByRole("button", { name: "Add transformation", exact: true }).click();
        await page.locator(".transform").nth(2).getByRole("button", { name: "Remove transformation", exact: true }).click();
        assert.equal(await page.locator(".transform").count(), 2);
        await second.getByLabel("Apply to all documents", { exact: true }).check();
        assert.ok(await second.getByPlaceholder("Add a collection").isDisabled());

        await page.getByRole("button", { name: "Save", exact: true }).click();
        await waitForToast(page, "Task editor-check saved");
        const tasks = (await api.requestOk("GET", `/databases/${SHOP}/tasks`)).OngoingTasksList;
        const saved = tasks.find(task => task.TaskName === "editor-check").Configuration;
        assert.deepEqual(saved.Transforms.map(t => [t.Name, t.Collections, t.ApplyToAllDocuments]), [
            ["Companies out", ["Companies"], false],
            ["Script #2", [], true],
        ]);
        assert.match(saved.Transforms[1].Script, /loadToEverything/);
        // The list shows both transformations.
        const card = taskCard(page, "editor-check");
        await card.locator('[data-transformation="Companies out"]').waitFor();
        await card.locator('[data-transformation="Script #2"]').waitFor();
        await card.getByRole("button", { name: "Delete", exact: true }).click();
        await confirm(page, "Delete", "Delete task editor-check?");
        await card.waitFor({ state: "detached" });
    });

    suite.test("the picker keeps the page; Delete database asks first and removes it", async ({ page, api }) => {
        await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
        await page.getByRole("heading", { name: "Ongoing Tasks" }).waitFor();
        await page.getByLabel("Current database").selectOption(SHIPPING);
        await page.waitForURL(/#databases\/tasks\/ongoingTasks\?database=shipping$/);
        await page.getByText("No ongoing tasks yet.").waitFor();

        await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Databases", exact: true }).click();
        const row = page.locator(`tr[data-database="${SHIPPING}"]`);
        await row.getByRole("button", { name: `Delete database ${SHIPPING}`, exact: true }).click();
        await confirm(page, "Cancel", `Delete database ${SHIPPING}?`);
        assert.ok((await api.databaseNames()).includes(SHIPPING), "Cancel keeps it");
        await row.getByRole("button", { name: `Delete database ${SHIPPING}`, exact: true }).click();
        await confirm(page, "Delete", `Delete database ${SHIPPING}?`);
        await waitForToast(page, `Database ${SHIPPING} deleted`);
        await row.waitFor({ state: "detached" });
        assert.deepEqual(await api.databaseNames(), [SHOP]);
        const options = await page.locator("#database-picker option").allTextContents();
        assert.ok(!options.includes(SHIPPING), `the picker forgot it: ${options}`);
    });
});
