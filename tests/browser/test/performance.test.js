"use strict";
// What the Studio costs the browser: the task list of 50 tasks refreshing every second (how
// idle the main thread stays), the documents page of 100 documents (its own render timing),
// and the Studio's compressed size. The figures are printed and written to
// target/browser-report.json; only sanity floors are asserted.

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const { studioSuite, uniqueName, waitFor } = require("../lib/harness");
const { route, taskCard } = require("../lib/studio");

const REPO = path.resolve(__dirname, "..", "..", "..");
const REPORT = path.join(REPO, "target", "browser-report.json");
const report = {};

/** Adds `figures` under `key` in target/browser-report.json (kept between runs of other keys). */
function record(key, figures) {
    report[key] = figures;
    let existing = {};
    try {
        existing = JSON.parse(fs.readFileSync(REPORT, "utf8"));
    } catch {
        // first run
    }
    fs.mkdirSync(path.dirname(REPORT), { recursive: true });
    fs.writeFileSync(REPORT, `${JSON.stringify({ ...existing, ...report, updated: new Date().toISOString() }, null, 2)}\n`);
    console.log(`${key}: ${JSON.stringify(figures)}`);
}

/** GET with `Accept-Encoding: gzip`, not decoded: status, headers and the bytes on the wire. */
function getRaw(url) {
    return new Promise((resolve, reject) => {
        http.get(url, { headers: { "accept-encoding": "gzip" } }, response => {
            let bytes = 0;
            response.on("data", chunk => { bytes += chunk.length; });
            response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, bytes }));
            response.on("error", reject);
        }).on("error", reject);
    });
}

/** The Studio's files as studio.rs lists them (ASSETS), so a new page file is counted too. */
function studioAssets() {
    const source = fs.readFileSync(path.join(REPO, "crates", "corvid-server", "src", "studio.rs"), "utf8");
    const block = /const ASSETS: &\[Asset\] = assets! \{([\s\S]*?)\};/.exec(source);
    assert.ok(block, "ASSETS not found in studio.rs");
    return [...block[1].matchAll(/"([^"]+)"\s*=>/g)].map(match => match[1]);
}

describe("performance", () => {
    const suite = studioSuite({ timeoutMs: 90_000 });

    suite.test("50 tasks: the list refreshes every second and the main thread stays idle", async ({ page, api, server, measureIdle }) => {
        const db = uniqueName("perf");
        const destination = `${db}_copy`;
        await api.createDatabase(db);
        await api.createDatabase(destination);
        for (let i = 1; i <= 20; i += 1) {
            await api.putDocument(db, `companies/${i}`, { Name: `Company ${i}`, "@metadata": { "@collection": "Companies" } });
        }
        await api.requestOk("PUT", `/databases/${db}/admin/connection-strings`, {
            Type: "Raven", Name: "copy", Database: destination, TopologyDiscoveryUrls: [server.url],
        });
        for (let i = 1; i <= 50; i += 1) {
            await api.requestOk("PUT", `/databases/${db}/admin/etl`, {
                Name: `task-${String(i).padStart(2, "0")}`, ConnectionStringName: "copy", EtlType: "Raven",
                Transforms: [{ Name: "main", Collections: ["Companies"], Script: `loadToCompanies({ Name: this.Name, Task: ${i} });` }],
            });
        }
        let refreshes = 0;
        page.on("request", request => {
            if (new URL(request.url()).pathname === `/databases/${db}/tasks`) refreshes += 1;
        });
        const opened = Date.now();
        await page.goto(route("databases/tasks/ongoingTasks", { database: db }));
        await waitFor("50 task cards", async () => (await page.locator("section.task").count()) === 50);
        const firstRenderMs = Date.now() - opened;
        await taskCard(page, "task-50").waitFor();

        const before = refreshes;
        const idle = await measureIdle({ durationMs: 10_000, label: "task list, 50 tasks" });
        const seen = refreshes - before;
        const refreshMs = await page.evaluate(() => window.__corvidStudio.timings.tasksRefresh);
        record("tasksPage50", {
            tasks: 50,
            firstRenderMs,
            refreshesIn10s: seen,
            lastRefreshMs: Math.round(refreshMs * 10) / 10,
            idleFraction: Math.round(idle.idle * 1000) / 1000,
            elapsedMs: idle.elapsedMs,
            busyMs: idle.busyMs,
            scriptMs: idle.scriptMs,
            layoutMs: idle.layoutMs,
            styleMs: idle.styleMs,
            longTasks: idle.longTasks,
            longestTaskMs: idle.longestTaskMs,
        });
        assert.ok(seen >= 6, `the list must refresh about every second; it asked /tasks ${seen} times in 10 s`);
        assert.ok(idle.idle > 0.5, `sanity floor: the page was busy ${(100 - idle.idle * 100).toFixed(1)}% of the time`);
        // Still right after the refreshes: all 50, all active.
        assert.equal(await page.locator("section.task").count(), 50);
        assert.equal(await page.locator("section.task .badge.Active").count(), 50);
    });

    suite.test("the documents page of 100 documents: its render time", async ({ page, api }) => {
        const db = uniqueName("perfdocs");
        await api.createDatabase(db);
        const commands = [];
        for (let i = 1; i <= 100; i += 1) {
            commands.push({
                Type: "PUT", Id: `orders/${i}`,
                Document: { Company: `companies/${i % 7}`, Total: i * 10.5, Lines: [{ Product: "products/1", Quantity: i }], "@metadata": { "@collection": "Orders" } },
            });
        }
        await api.requestOk("POST", `/databases/${db}/bulk_docs`, { Commands: commands });
        const rows = page.locator("table[aria-label=Documents] tbody tr");
        const timing = async () => {
            await waitFor("100 rows and the page's timing", async () => (await rows.count()) === 100
                && (await page.evaluate(() => typeof window.__corvidStudio.timings.documentsPage === "number")));
            const ms = await page.evaluate(() => window.__corvidStudio.timings.documentsPage);
            await page.evaluate(() => { delete window.__corvidStudio.timings.documentsPage; });
            return Math.round(ms * 10) / 10;
        };
        // Opened cold (a fresh load of the Studio), then from the sidebar, then reloaded.
        await page.goto(route("databases/documents", { database: db, collection: "Orders" }));
        const cold = await timing();
        await page.locator('nav[aria-label=Collections] a[data-collection=""]').click();
        await page.waitForURL(/documents\?database=[^&]+$/);
        const allDocuments = await timing();
        await page.reload();
        const reloaded = await timing();
        const timings = [cold, allDocuments, reloaded];
        assert.match(await page.getByRole("status").filter({ hasText: "Showing" }).textContent(), /Showing 1–100 of 100/);
        record("documentsPage100", { documents: 100, coldMs: cold, allDocumentsFromSidebarMs: allDocuments, reloadedMs: reloaded });
        assert.ok(timings.every(ms => ms > 0 && ms < 5000), `render times ${timings}`);
    });

    suite.test("the Studio's compressed size", async ({ server }) => {
        const index = await getRaw(`${server.url}/studio/index.html`);
        assert.equal(index.status, 200);
        const html = await (await fetch(`${server.url}/studio/index.html`)).text();
        const base = /\/studio\/assets\/[0-9a-f]+/.exec(html);
        assert.ok(base, "index.html names its versioned asset folder");
        const files = [];
        for (const asset of studioAssets()) {
            const url = asset === "index.html" ? `${server.url}/studio/index.html` : `${server.url}${base[0]}/${asset}`;
            const answer = await getRaw(url);
            assert.equal(answer.status, 200, `${url} answered ${answer.status}`);
            const length = Number(answer.headers["content-length"] || answer.bytes);
            assert.equal(length, answer.bytes, `${asset}: content-length matches what came`);
            files.push({ asset, encoding: answer.headers["content-encoding"] || "identity", bytes: length });
        }
        const total = files.reduce((sum, file) => sum + file.bytes, 0);
        const plain = studioAssets().reduce((sum, asset) =>
            sum + fs.statSync(path.join(REPO, "crates", "corvid-server", "studio", asset)).size, 0);
        record("studioAssets", { files: files.length, gzipBytes: total, plainBytes: plain, perFile: files });
        assert.ok(files.filter(file => file.asset.endsWith(".js")).every(file => file.encoding === "gzip"), "scripts are sent gzipped");
        assert.ok(total > 1000 && total < plain, `compressed ${total} B of ${plain} B`);
    });
});
