"use strict";
// The Studio is there: `GET /` sends a browser to it, and it loads without a page error.

const { describe } = require("node:test");
const assert = require("node:assert/strict");
const { studioSuite, sleep } = require("../lib/harness");

describe("smoke", () => {
    const suite = studioSuite();

    suite.test("GET / redirects to the Studio", async ({ api }) => {
        const response = await api.request("GET", "/");
        assert.ok(response.status >= 300 && response.status < 400, `GET / answered ${response.status}`);
        const location = new URL(response.headers.get("location"), suite.server.url);
        assert.equal(location.pathname, "/studio/index.html");
    });

    suite.test("the Studio loads, titled Corvid, with no page error", async ({ page }) => {
        const response = await page.goto("/", { waitUntil: "load" });
        assert.ok(response.ok(), `the Studio answered ${response.status()}`);
        assert.equal(new URL(page.url()).pathname, "/studio/index.html");
        assert.match(await page.title(), /Corvid/);
        // Let the modules run and their first requests come back before the error check.
        await page.waitForLoadState("networkidle", { timeout: 5000 }).catch(() => {});
        await sleep(500);
    });
});
