"use strict";
// Queue ETL through the Studio, into the machine's RabbitMQ (127.0.0.1:5672, guest/guest; a
// fanout exchange and queue of its own, deleted at the end): add a RabbitMQ ETL task with a new connection string,
// see "Test script" show the CloudEvents a document would publish, Save, the messages arrive
// (counted with rabbitmqctl); the connection string is listed without its password; edit the
// task to delete processed documents (the outbox) and see a new document published and
// removed; a connection string with the hidden password left in it is refused before saving.

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const { studioSuite, waitFor } = require("../lib/harness");
const {
    confirm, createDatabaseInUi, deleteRabbitExchange, deleteRabbitQueue, field, rabbitmqAvailable, rabbitQueueMessages,
    route, runScriptTest, taskCard, waitForTaskState, waitForToast,
} = require("../lib/studio");

const SHOP = "shop";
const URI = "amqp://guest:guest@127.0.0.1:5672/%2f";
const order = (total) => ({ Total: total, "@metadata": { "@collection": "Orders" } });

async function openAddRabbitTask(page) {
    await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
    await page.getByRole("button", { name: "Add Task", exact: true }).click();
    await page.getByRole("link", { name: "RabbitMQ ETL", exact: true }).first().click();
    await page.getByRole("heading", { name: "Add RabbitMQ ETL" }).waitFor();
}

async function saveTask(page, name) {
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await waitForToast(page, `Task ${name} saved`);
    await page.waitForURL(/#databases\/tasks\/ongoingTasks/);
    await taskCard(page, name).waitFor();
}

describe("Queue ETL flow", () => {
    const suite = studioSuite();
    const queue = `corvid-browser-${crypto.randomBytes(4).toString("hex")}`;
    // A fanout exchange named after the queue, and the queue bound to it (declared by Corvid).
    const script = `loadTo('${queue}', {\n    Id: id(this),\n    Total: this.Total\n}, 'orders', { Type: 'orders.changed' });`;
    const TASK = "orders-to-rabbitmq";

    suite.test("RabbitMQ: Test script shows the CloudEvents; after Save the messages arrive; outbox; edit and delete", async ({ page, api, t }) => {
        if (!rabbitmqAvailable()) {
            t.skip("no RabbitMQ at 127.0.0.1:5672 (rabbitmqctl)");
            return;
        }
        try {
            await page.goto(route("databases"));
            await createDatabaseInUi(page, SHOP);
            for (const [id, total] of [["orders/1-A", 10], ["orders/2-A", 20], ["orders/3-A", 30]]) {
                await api.putDocument(SHOP, id, order(total));
            }

            await openAddRabbitTask(page);
            await field(page, "Task name").fill(TASK);
            await field(page, "Connection string").selectOption("__new__");
            await field(page, "New connection string name").fill("rabbit");
            await field(page, "RabbitMQ connection string (amqp:// URI)").fill(URI);
            await page.locator(".transform").first().getByRole("button", { name: "Remove collection Orders" }).waitFor();
            await field(page, "Script of Script #1").fill(script);

            // Not saved yet: the test takes the connection string inline and publishes nothing.
            const output = await runScriptTest(page, "orders/2-A");
            await output.getByText("Messages that would be published").waitFor();
            const shown = await output.textContent();
            assert.match(shown, /type: orders\.changed/);
            assert.match(shown, /partitionkey: orders\/2-A/);
            assert.match(shown, /routing key: orders/);
            assert.match(shown, /"Total": 20/);
            assert.equal(rabbitQueueMessages(queue), 0, "a test publishes nothing");

            await saveTask(page, TASK);
            await waitForTaskState(page, TASK, "Active");
            // Where the broker is, without credentials.
            assert.match(await taskCard(page, TASK).locator(".dest").textContent(), /^RabbitMQ · amqp:\/\/127\.0\.0\.1:5672/);
            assert.equal(await taskCard(page, TASK).locator(".badge.type").textContent(), "RabbitMQ ETL");
            await waitFor("3 messages in RabbitMQ", () => rabbitQueueMessages(queue) === 3, 20_000);

            // The connection string is listed, without its password.
            await page.goto(route("databases/settings/connectionStrings", { database: SHOP }));
            const listed = page.locator('tr[data-connection-string="rabbit"][data-type="Queue"]');
            await listed.waitFor();
            assert.match(await listed.textContent(), /RabbitMQ/);
            assert.doesNotMatch(await listed.textContent(), /guest:guest@/);

            // Edit: the queue's documents are deleted once published (the outbox pattern).
            await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
            await taskCard(page, TASK).getByRole("link", { name: "Edit", exact: true }).click();
            await page.getByRole("heading", { name: `Edit RabbitMQ ETL: ${TASK}` }).waitFor();
            assert.equal(await field(page, "Connection string").inputValue(), "rabbit");
            await page.getByRole("button", { name: "Add queue options", exact: true }).click();
            await page.getByRole("textbox", { name: "Queue name", exact: true }).fill(queue);
            await page.getByRole("checkbox", { name: "Delete processed documents", exact: true }).check();
            await saveTask(page, TASK);
            const saved = (await api.requestOk("GET", `/databases/${SHOP}/tasks`)).OngoingTasksList
                .find(task => task.TaskName === TASK);
            assert.deepEqual(saved.Configuration.Queues.map(q => [q.Name, q.DeleteProcessedDocuments]), [[queue, true]]);
            await api.putDocument(SHOP, "orders/4-A", order(40));
            await waitFor("the 4th message", () => rabbitQueueMessages(queue) === 4, 20_000);
            await waitFor("orders/4-A deleted once published", async () => (await api.getDocument(SHOP, "orders/4-A")) === null);

            // A new connection string with the hidden password left in is refused in the page.
            await openAddRabbitTask(page);
            await field(page, "Task name").fill("hidden-password");
            await field(page, "Connection string").selectOption("__new__");
            await field(page, "New connection string name").fill("rabbit-copy");
            await field(page, "RabbitMQ connection string (amqp:// URI)").fill("amqp://guest:*****@127.0.0.1:5672/%2f");
            await page.getByRole("button", { name: "Save", exact: true }).click();
            await page.locator(".new-connection .field-error").filter({ hasText: "Enter the password" }).waitFor();

            await page.goto(route("databases/tasks/ongoingTasks", { database: SHOP }));
            const card = taskCard(page, TASK);
            await card.getByRole("button", { name: "Delete", exact: true }).click();
            await confirm(page, "Delete", `Delete task ${TASK}?`);
            await card.waitFor({ state: "detached" });
        } finally {
            deleteRabbitQueue(queue);
            deleteRabbitExchange(queue);
        }
    });
});
