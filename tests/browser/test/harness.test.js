"use strict";
// The harness itself, on pages of its own (not the Studio): restarts keep the port and the
// data, page errors fail a test unless expected, the idle measurement tells busy from idle.

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const { studioSuite, uniqueName, PageErrors } = require("../lib/harness");

describe("harness", () => {
    const suite = studioSuite();

    suite.test("the API helpers create a database and put and get a document", async ({ api }) => {
        const db = uniqueName("harness");
        await api.createDatabase(db);
        assert.ok((await api.databaseNames()).includes(db));
        await api.putDocument(db, "users/1", { Name: "Ann", "@metadata": { "@collection": "Users" } });
        const doc = await api.getDocument(db, "users/1");
        assert.equal(doc.Name, "Ann");
        assert.equal(doc["@metadata"]["@collection"], "Users");
        assert.equal(await api.getDocument(db, "users/404"), null);
        assert.equal((await api.query(db, "from Users")).length, 1);
        await api.deleteDatabase(db);
    });

    suite.test("a restart keeps the port and the data, and the page sees the outage", async ({ page, server, api, expectError, allowError }) => {
        const db = uniqueName("restart");
        await api.createDatabase(db);
        await api.putDocument(db, "notes/1", { Text: "kept" });
        // Any page of the server's origin; off the Studio, Chromium also asks for /favicon.ico.
        allowError("/favicon.ico");
        await page.goto("/databases");
        const { port, url } = server;

        const status = await server.stop();
        assert.equal(status.forced, undefined, "corvid serve did not stop on SIGTERM");
        expectError(/ERR_CONNECTION_REFUSED/);
        const failed = await page.evaluate(async () => {
            try {
                await fetch("/setup/alive");
                return false;
            } catch {
                return true;
            }
        });
        assert.ok(failed, "a fetch while the server is down must fail");

        await server.start();
        assert.equal(server.port, port);
        assert.equal(server.url, url);
        assert.equal((await api.getDocument(db, "notes/1")).Text, "kept");
        const alive = await page.evaluate(async () => (await fetch("/setup/alive")).status);
        assert.equal(alive, 204);

        await server.stop({ signal: "SIGKILL" });
        await server.start();
        assert.equal(server.port, port);
        assert.equal((await api.getDocument(db, "notes/1")).Text, "kept");
    });

    suite.test("page errors are recorded; an expected one passes", async ({ page, expectError, allowError }) => {
        expectError("boom from the page");
        allowError(/never happens/);
        await page.setContent("<title>errors</title><p>errors</p>");
        await page.evaluate(() => {
            console.error("boom from the page");
            setTimeout(() => { throw new Error("uncaught in a timer"); }, 0);
        });
        expectError("uncaught in a timer");
        await page.waitForTimeout(200);
    });

    suite.test("PageErrors.check fails on an unexpected error and on a missing expected one", async ({ page }) => {
        const other = await page.context().newPage();
        const errors = new PageErrors(other);
        await other.setContent("<p>x</p>");
        await other.evaluate(() => console.error("surprise"));
        await other.waitForTimeout(100);
        assert.throws(() => errors.check(), /reported 1 error\(s\):\n {2}console.error: surprise/);
        errors.allow("surprise");
        errors.check();
        errors.expect(/not there/);
        assert.throws(() => errors.check(), /never occurred/);
        await other.close();
    });

    suite.test("measureIdle tells an idle page from a busy one", async ({ page, measureIdle }) => {
        await page.setContent("<title>idle</title><p id=n>0</p>");
        const idle = await measureIdle({ durationMs: 1500, label: "idle page" });
        assert.ok(idle.idle > 0.9, `an idle page was only ${idle.idle} idle`);
        assert.ok(idle.elapsedMs >= 1400 && idle.elapsedMs < 3000, `elapsed ${idle.elapsedMs} ms`);

        // About 60% busy: every 100 ms, 60 ms of spinning.
        await page.evaluate(() => {
            window.__spin = setInterval(() => {
                const end = performance.now() + 60;
                while (performance.now() < end) { /* busy */ }
            }, 100);
        });
        const busy = await measureIdle({ durationMs: 1500, label: "busy page" });
        await page.evaluate(() => clearInterval(window.__spin));
        assert.ok(busy.idle < 0.6, `a page spinning 60% of the time was ${busy.idle} idle`);
        assert.ok(busy.busyMs > 600, `busy ${busy.busyMs} ms`);
        assert.ok(busy.longTasks >= 5, `${busy.longTasks} long tasks`);
    });
});
