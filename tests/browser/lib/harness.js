"use strict";
// The browser suite's harness: a real `corvid serve` (fresh data directory, loopback port; can
// be stopped and started again on the same port and data), Debian's Chromium driven by
// playwright-core (never a downloaded browser), a fresh page per test with a full-page
// screenshot at the end (pass or fail), page errors failing the test, the HTTP API for checking
// through the back door, and the main thread's idle time over an interval.
//
//     const { describe } = require("node:test");
//     const { studioSuite } = require("../lib/harness");
//     describe("documents", () => {
//         const suite = studioSuite();        // one server and one browser for the file
//         suite.test("edits a document", async ({ page, server, api, expectError }) => {
//             await api.createDatabase("shop");
//             await page.goto("/studio/index.html");
//             ...
//         });
//     });
//
// See README.md for the full list.

const assert = require("node:assert/strict");
const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { it, before, after } = require("node:test");

const REPO = path.resolve(__dirname, "..", "..", "..");

/** `CORVID_BIN`, default `target/debug/corvid` of this checkout. */
function corvidBin() {
    const bin = process.env.CORVID_BIN || "target/debug/corvid";
    return path.resolve(REPO, bin);
}

/** `CORVID_CHROMIUM`, default Debian's `/usr/bin/chromium`. */
function chromiumPath() {
    return process.env.CORVID_CHROMIUM || "/usr/bin/chromium";
}

/** `CORVID_SCREENSHOTS`, default `target/browser-screenshots` of this checkout. */
function screenshotDir() {
    return path.resolve(REPO, process.env.CORVID_SCREENSHOTS || "target/browser-screenshots");
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
/** Like `sleep`, but does not keep the process alive (for the losing side of a race). */
const deadline = ms => new Promise(resolve => setTimeout(resolve, ms).unref());

/**
 * Calls `probe` until it returns a truthy value and returns that value; fails after
 * `timeoutMs`, showing the last value (or the last error `probe` threw).
 */
async function waitFor(what, probe, timeoutMs = 10_000, intervalMs = 100) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await probe();
            if (last) {
                return last;
            }
        } catch (error) {
            last = error;
        }
        if (Date.now() >= deadline) {
            const shown = last instanceof Error ? last.message : JSON.stringify(last);
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${shown})`);
        }
        await sleep(intervalMs);
    }
}

/** A file-name-safe form of a test's name. */
function slug(text) {
    return text
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 120) || "test";
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * One `corvid serve` on 127.0.0.1 with a data directory of its own. `start()` the first time
 * takes a free port (`--bind 127.0.0.1:0`); every later `start()` uses that same port and data
 * directory, so a page open in the browser sees the server go away and come back.
 */
class CorvidServer {
    constructor({ bin = corvidBin(), dataDir, args = [], env = {} } = {}) {
        this.bin = bin;
        this.root = fs.mkdtempSync(path.join(os.tmpdir(), "corvid-browser-"));
        /** The data directory (`--data-dir`), kept across restarts. */
        this.dataDir = dataDir || path.join(this.root, "data");
        this.args = args;
        this.env = env;
        /** `http://127.0.0.1:<port>` once started the first time. */
        this.url = null;
        this.port = 0;
        this.process = null;
        this.starts = 0;
        this.logFile = path.join(this.root, "corvid.log");
    }

    /** Starts the server (same port and data directory as before, if it ran before). */
    async start() {
        if (this.process) {
            throw new Error("corvid serve is already running");
        }
        if (!fs.existsSync(this.bin)) {
            throw new Error(`no corvid binary at ${this.bin}: run \`cargo build -p corvid\` or set CORVID_BIN`);
        }
        this.starts += 1;
        const log = fs.openSync(this.logFile, "a");
        fs.writeSync(log, `\n--- start ${this.starts} (port ${this.port || "any"}) ---\n`);
        const child = spawn(
            this.bin,
            ["serve", "--bind", `127.0.0.1:${this.port}`, "--data-dir", this.dataDir, ...this.args],
            { env: { ...process.env, ...this.env }, stdio: ["ignore", "pipe", log] });
        fs.closeSync(log);
        this.process = child;
        const exited = new Promise(resolve => child.once("exit", (code, signal) => resolve({ code, signal })));
        this.exited = exited;
        const listening = new Promise(resolve => {
            let out = "";
            child.stdout.on("data", chunk => {
                fs.appendFileSync(this.logFile, chunk);
                out += chunk.toString();
                const match = /Corvid listening on (\S+)/.exec(out);
                if (match) {
                    resolve(match[1]);
                }
            });
        });
        const outcome = await Promise.race([
            listening.then(url => ({ url })),
            exited.then(status => ({ status })),
            deadline(30_000).then(() => ({ timeout: true })),
        ]);
        if (!outcome.url) {
            await this.stop({ timeoutMs: 1000 }).catch(() => {});
            const why = outcome.timeout ? "did not start within 30 s" : `exited (${JSON.stringify(outcome.status)})`;
            throw new Error(`corvid serve ${why}; its log:\n${this.logTail()}`);
        }
        const url = new URL(outcome.url);
        this.port = Number(url.port);
        this.url = `http://127.0.0.1:${this.port}`;
        await waitFor("GET /setup/alive", async () => {
            const response = await fetch(`${this.url}/setup/alive`);
            return response.ok;
        }, 10_000);
        return this;
    }

    /** Whether the process is running. */
    get running() {
        return this.process !== null;
    }

    /**
     * Stops the server: SIGTERM (a clean shutdown), then SIGKILL when it has not exited after
     * `timeoutMs`. `{ signal: "SIGKILL" }` kills at once (a crash). Resolves to how it exited.
     */
    async stop({ signal = "SIGTERM", timeoutMs = 10_000 } = {}) {
        const child = this.process;
        if (!child) {
            return null;
        }
        child.kill(signal);
        let status = await Promise.race([this.exited, deadline(timeoutMs).then(() => null)]);
        if (!status) {
            child.kill("SIGKILL");
            status = await this.exited;
            status.forced = true;
        }
        this.process = null;
        return status;
    }

    /** `stop(options)` then `start()`: same port, same data directory. */
    async restart(options) {
        await this.stop(options);
        return this.start();
    }

    /** The last `lines` lines of the server's stdout and stderr (all starts). */
    logTail(lines = 60) {
        try {
            return fs.readFileSync(this.logFile, "utf8").split("\n").slice(-lines).join("\n");
        } catch {
            return "(no log)";
        }
    }

    /** Stops the server and removes its temporary directory (kept when CORVID_KEEP_DATA=1). */
    async dispose() {
        await this.stop();
        if (process.env.CORVID_KEEP_DATA === "1") {
            console.log(`kept the server's directory ${this.root}`);
        } else {
            fs.rmSync(this.root, { recursive: true, force: true });
        }
    }
}

/** Starts a `CorvidServer` (see there for the options). */
async function startServer(options) {
    return new CorvidServer(options).start();
}

// ---------------------------------------------------------------------------------------------
// The HTTP API, straight from the test (not through the page)

class ApiError extends Error {
    constructor(method, url, status, body) {
        super(`${method} ${url} answered ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`);
        this.status = status;
        this.body = body;
    }
}

/** The server's HTTP API; `server` is anything with a `url` (read at each call, so restarts are fine). */
class Api {
    constructor(server) {
        this.server = server;
    }

    /**
     * `method path` with an optional JSON body. Resolves to `{ status, headers, body }` (body
     * parsed as JSON when it is JSON, else text) whatever the status; `requestOk` throws on
     * anything but 2xx.
     */
    async request(method, urlPath, body, { headers = {} } = {}) {
        const init = { method, headers: { ...headers }, redirect: "manual" };
        if (body !== undefined) {
            init.body = typeof body === "string" ? body : JSON.stringify(body);
            init.headers["content-type"] = init.headers["content-type"] || "application/json";
        }
        const response = await fetch(`${this.server.url}${urlPath}`, init);
        const text = await response.text();
        let parsed = text;
        if ((response.headers.get("content-type") || "").includes("json") && text.length > 0) {
            try {
                parsed = JSON.parse(text);
            } catch {
                // leave it as text
            }
        }
        return { status: response.status, headers: response.headers, body: parsed };
    }

    /** Like `request`, but throws an `ApiError` unless the status is 2xx; resolves to the body. */
    async requestOk(method, urlPath, body, options) {
        const response = await this.request(method, urlPath, body, options);
        if (response.status < 200 || response.status > 299) {
            throw new ApiError(method, urlPath, response.status, response.body);
        }
        return response.body;
    }

    /** `PUT /admin/databases` with `{"DatabaseName": name}`. */
    async createDatabase(name) {
        return this.requestOk("PUT", `/admin/databases?name=${encodeURIComponent(name)}`, { DatabaseName: name });
    }

    /** `DELETE /admin/databases` (hard delete). */
    async deleteDatabase(name) {
        return this.requestOk("DELETE", "/admin/databases", { DatabaseNames: [name], HardDelete: true });
    }

    /** The names of the databases (`GET /databases`). */
    async databaseNames() {
        const body = await this.requestOk("GET", "/databases");
        return (body.Databases || []).map(database => database.Name);
    }

    /**
     * `PUT /databases/{db}/docs?id=` with `doc` (put `@metadata.@collection` in it for a
     * collection). Resolves to the server's answer (`{ Id, ChangeVector }`).
     */
    async putDocument(db, id, doc) {
        return this.requestOk("PUT", `/databases/${encodeURIComponent(db)}/docs?id=${encodeURIComponent(id)}`, doc);
    }

    /** The document `id` of `db` (with its `@metadata`), or `null` when there is none. */
    async getDocument(db, id) {
        const response = await this.request("GET", `/databases/${encodeURIComponent(db)}/docs?id=${encodeURIComponent(id)}`);
        if (response.status === 404) {
            return null;
        }
        if (response.status !== 200) {
            throw new ApiError("GET", `docs?id=${id}`, response.status, response.body);
        }
        return response.body.Results[0];
    }

    /** `DELETE /databases/{db}/docs?id=`. */
    async deleteDocument(db, id) {
        return this.requestOk("DELETE", `/databases/${encodeURIComponent(db)}/docs?id=${encodeURIComponent(id)}`);
    }

    /** The results of an RQL query (`POST /databases/{db}/queries`). */
    async query(db, rql, parameters = {}) {
        const body = await this.requestOk("POST", `/databases/${encodeURIComponent(db)}/queries`, { Query: rql, QueryParameters: parameters });
        return body.Results;
    }
}

/** `test_<8 hex>`-style names: only characters every RavenDB version accepts. */
function uniqueName(prefix = "browser") {
    return `${prefix.replace(/[^A-Za-z0-9_]/g, "_")}_${crypto.randomBytes(4).toString("hex")}`;
}

// ---------------------------------------------------------------------------------------------
// The browser

/** The flags this machine kind needs (closed network, root, no GPU); see README.md. */
const CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/**
 * Debian's Chromium through playwright-core. playwright's `launch` gives it a new empty
 * `--user-data-dir` of its own (removed on close).
 */
async function launchBrowser({ args = [] } = {}) {
    const executablePath = chromiumPath();
    if (!fs.existsSync(executablePath)) {
        throw new Error(`no Chromium at ${executablePath}: apt-get install -y chromium (or set CORVID_CHROMIUM)`);
    }
    const { chromium } = require("playwright-core");
    return chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS, ...args] });
}

/**
 * Records the page's console errors and uncaught exceptions. `check()` throws when one
 * occurred that no `allow`/`expect` pattern matches, or when an `expect`ed one never came.
 */
class PageErrors {
    constructor(page) {
        this.all = [];
        this.allowed = [];
        this.expected = [];
        page.on("console", message => {
            if (message.type() === "error") {
                const where = message.location();
                const at = where && where.url ? ` (${where.url}:${where.lineNumber})` : "";
                this.all.push(`console.error: ${message.text()}${at}`);
            }
        });
        page.on("pageerror", error => {
            this.all.push(`uncaught: ${error.stack || error.message || String(error)}`);
        });
    }

    /** Errors matching `pattern` (RegExp or substring) are fine, however many (also none). */
    allow(pattern) {
        this.allowed.push(pattern);
    }

    /** Errors matching `pattern` are fine, and at least one must occur by the end of the test. */
    expect(pattern) {
        this.expected.push(pattern);
    }

    static matches(pattern, text) {
        return pattern instanceof RegExp ? pattern.test(text) : text.includes(pattern);
    }

    /** The errors no pattern allows. */
    unexpected() {
        const patterns = [...this.allowed, ...this.expected];
        return this.all.filter(text => !patterns.some(pattern => PageErrors.matches(pattern, text)));
    }

    check() {
        const problems = [];
        const unexpected = this.unexpected();
        if (unexpected.length > 0) {
            problems.push(`the page reported ${unexpected.length} error(s):\n  ${unexpected.join("\n  ")}`);
        }
        for (const pattern of this.expected) {
            if (!this.all.some(text => PageErrors.matches(pattern, text))) {
                problems.push(`the expected page error ${pattern} never occurred`);
            }
        }
        if (problems.length > 0) {
            throw new Error(problems.join("\n"));
        }
    }
}

/** Saves a full-page screenshot of `page` as `<dir>/<name>.png`; returns the path, or null. */
async function saveScreenshot(page, name) {
    const dir = screenshotDir();
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${slug(name)}.png`);
    if (page.isClosed()) {
        return null;
    }
    await page.screenshot({ path: file, fullPage: true, timeout: 10_000 });
    return file;
}

// ---------------------------------------------------------------------------------------------
// Main-thread idle time

/**
 * Measures how idle the page's main thread is during `durationMs` (or until `during()`
 * resolves, when given): Chrome's own `Performance.getMetrics` `TaskDuration` (the time the
 * renderer's main thread spent running tasks) before and after, against the elapsed time; plus
 * the long tasks (> 50 ms) the page saw meanwhile. Prints the result and returns
 * `{ elapsedMs, busyMs, idle (0..1), scriptMs, layoutMs, styleMs, longTasks, longestTaskMs }`.
 */
async function measureIdle(page, { durationMs = 5000, during, label = "main thread" } = {}) {
    const cdp = await page.context().newCDPSession(page);
    try {
        await cdp.send("Performance.enable", { timeDomain: "timeTicks" });
        await page.evaluate(() => {
            window.__corvidLongTasks = [];
            try {
                window.__corvidLongTaskObserver = new PerformanceObserver(list => {
                    for (const entry of list.getEntries()) {
                        window.__corvidLongTasks.push(entry.duration);
                    }
                });
                window.__corvidLongTaskObserver.observe({ type: "longtask" });
            } catch {
                // no long-task support: the CDP figures still count
            }
        });
        const metrics = async () => {
            const { metrics: list } = await cdp.send("Performance.getMetrics");
            return Object.fromEntries(list.map(({ name, value }) => [name, value]));
        };
        const start = await metrics();
        if (during) {
            await during();
        } else {
            await sleep(durationMs);
        }
        const end = await metrics();
        const longTasks = await page.evaluate(() => {
            if (window.__corvidLongTaskObserver) {
                window.__corvidLongTaskObserver.disconnect();
            }
            return window.__corvidLongTasks || [];
        });
        const seconds = name => (end[name] || 0) - (start[name] || 0);
        const elapsedMs = seconds("Timestamp") * 1000;
        const busyMs = seconds("TaskDuration") * 1000;
        const result = {
            elapsedMs: Math.round(elapsedMs),
            busyMs: Math.round(busyMs),
            idle: elapsedMs > 0 ? Math.max(0, 1 - busyMs / elapsedMs) : 0,
            scriptMs: Math.round(seconds("ScriptDuration") * 1000),
            layoutMs: Math.round(seconds("LayoutDuration") * 1000),
            styleMs: Math.round(seconds("RecalcStyleDuration") * 1000),
            longTasks: longTasks.length,
            longestTaskMs: Math.round(Math.max(0, ...longTasks)),
        };
        console.log(`${label}: idle ${(result.idle * 100).toFixed(1)}% of ${result.elapsedMs} ms ` +
            `(busy ${result.busyMs} ms: script ${result.scriptMs}, layout ${result.layoutMs}, ` +
            `style ${result.styleMs}; ${result.longTasks} long task(s), longest ${result.longestTaskMs} ms)`);
        return result;
    } finally {
        await cdp.detach().catch(() => {});
    }
}

// ---------------------------------------------------------------------------------------------
// The suite: one server and one browser per test file, a fresh page per test

/**
 * Call inside `describe()`: registers `before`/`after` hooks that start a `CorvidServer`
 * (`serverOptions`) and the browser, and returns `{ test, server, browser, api }` (`server`,
 * `browser` and `api` are getters, valid once the hooks ran).
 *
 * `suite.test(name, [options,] fn)` is `it()` with a fresh browser context and page whose
 * relative `goto`s go to the server. `fn` gets
 * `{ page, context, server, api, expectError, allowError, screenshot, measureIdle, t }`.
 * At the end, pass or fail, a full-page screenshot goes to
 * `target/browser-screenshots/<file>-<test name>.png`; then the test fails if the page logged a
 * console error or threw an uncaught exception that `allowError`/`expectError` did not cover.
 */
function studioSuite({ serverOptions = {}, browserArgs = [], viewport = { width: 1280, height: 800 }, timeoutMs = 60_000 } = {}) {
    let server = null;
    let browser = null;
    let api = null;
    const file = path.basename(require.main ? require.main.filename : "test", ".test.js");

    before(async () => {
        server = await startServer(serverOptions);
        api = new Api(server);
        browser = await launchBrowser({ args: browserArgs });
    });

    after(async () => {
        if (browser) {
            await browser.close().catch(() => {});
        }
        if (server) {
            await server.dispose();
        }
    });

    function test(name, options, fn) {
        if (typeof options === "function") {
            fn = options;
            options = {};
        }
        return it(name, { timeout: timeoutMs, ...options }, async t => {
            if (!server.running) {
                await server.start(); // a previous test left it stopped
            }
            const context = await browser.newContext({ baseURL: server.url, viewport });
            const page = await context.newPage();
            const errors = new PageErrors(page);
            let failure = null;
            try {
                await fn({
                    page,
                    context,
                    server,
                    api,
                    t,
                    expectError: pattern => errors.expect(pattern),
                    allowError: pattern => errors.allow(pattern),
                    screenshot: label => saveScreenshot(page, `${file}-${name}-${label}`),
                    measureIdle: options2 => measureIdle(page, options2),
                });
            } catch (error) {
                failure = error;
            }
            try {
                const shot = await saveScreenshot(page, `${file}-${name}`);
                if (shot) {
                    t.diagnostic(`screenshot: ${path.relative(REPO, shot)}`);
                }
            } catch (error) {
                t.diagnostic(`no screenshot: ${error.message}`);
            }
            await context.close().catch(() => {});
            if (!failure) {
                try {
                    errors.check();
                } catch (error) {
                    failure = error;
                }
            } else if (errors.unexpected().length > 0) {
                t.diagnostic(`the page also reported: ${errors.unexpected().join(" | ")}`);
            }
            if (failure) {
                t.diagnostic(`corvid serve's log (last lines):\n${server.logTail(30)}`);
                throw failure;
            }
        });
    }

    return {
        test,
        get server() { return server; },
        get browser() { return browser; },
        get api() { return api; },
    };
}

module.exports = {
    Api,
    ApiError,
    CHROMIUM_ARGS,
    CorvidServer,
    PageErrors,
    assert,
    chromiumPath,
    corvidBin,
    launchBrowser,
    measureIdle,
    saveScreenshot,
    screenshotDir,
    sleep,
    startServer,
    studioSuite,
    uniqueName,
    waitFor,
};
