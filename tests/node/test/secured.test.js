"use strict";
// The official Node.js client against a secured Corvid (HTTPS, client certificates): the admin
// certificate reads and writes, no certificate is refused, and a certificate registered with
// Read on one database reads it but cannot write.
//
// Runs only when CORVID_SECURED_URL (https://...) and CORVID_CERTS (a directory written by
// `corvid certificate create`, whose admin.pem the server registered with --admin-certificate)
// are set; scripts/check starts such a server. The client's PEM reader takes only
// `RSA PRIVATE KEY` blocks (Corvid's keys are PKCS#8 ECDSA), so the certificates are handed to
// it as PFX files made with the openssl command.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const { execFileSync } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const {
    DocumentStore,
    CreateDatabaseOperation,
    DeleteDatabasesOperation,
    PutClientCertificateOperation,
    GetCertificatesOperation,
    DeleteCertificateOperation,
} = require("ravendb");
const corvid = require("../lib/corvid");

const URL = (process.env.CORVID_SECURED_URL || "").trim().replace(/\/+$/, "");
const CERTS = process.env.CORVID_CERTS || "";
const PFX_PASSWORD = "corvid";

function hasOpenssl() {
    try {
        execFileSync("openssl", ["version"], { stdio: "ignore" });
        return true;
    } catch {
        return false;
    }
}

const skip = !(URL && CERTS)
    ? "CORVID_SECURED_URL and CORVID_CERTS are not set"
    : !hasOpenssl() ? "no openssl command to make PFX files" : false;

/** A PFX of a PEM certificate and its key. */
function pfx(dir, name, certificateFile, keyFile) {
    const out = path.join(dir, `${name}.pfx`);
    execFileSync("openssl", ["pkcs12", "-export", "-in", certificateFile, "-inkey", keyFile,
        "-passout", `pass:${PFX_PASSWORD}`, "-out", out]);
    return fs.readFileSync(out);
}

/** A self-signed client certificate: its PFX and its base64 DER. */
function selfSignedClient(dir, name) {
    const key = path.join(dir, `${name}.key`);
    const certificate = path.join(dir, `${name}.pem`);
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", certificate, "-subj", `/CN=${name}`, "-days", "30"],
    { stdio: "ignore" });
    const der = new crypto.X509Certificate(fs.readFileSync(certificate)).raw.toString("base64");
    return { pfx: pfx(dir, name, certificate, key), der };
}

function store(database, certificatePfx) {
    const authOptions = { ca: fs.readFileSync(path.join(CERTS, "ca.pem")) };
    if (certificatePfx) {
        Object.assign(authOptions, { type: "pfx", certificate: certificatePfx, password: PFX_PASSWORD });
    } else {
        // The client wants a certificate to take a CA; give it the CA's own (no key).
        Object.assign(authOptions, { type: "pem", certificate: fs.readFileSync(path.join(CERTS, "ca.pem")) });
    }
    const res = new DocumentStore(URL, database, authOptions);
    res.initialize();
    return res;
}

describe("secured server (HTTPS, client certificates)", { skip }, () => {
    let dir;
    let adminPfx;
    let admin;
    let database;

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "corvid-node-secured-"));
        adminPfx = pfx(dir, "admin", path.join(CERTS, "admin.pem"), path.join(CERTS, "admin.key"));
        admin = store(undefined, adminPfx);
        database = corvid.uniqueDatabaseName("secured");
        await admin.maintenance.server.send(new CreateDatabaseOperation({ databaseName: database }));
    });

    after(async () => {
        if (admin) {
            try {
                await admin.maintenance.server.send(
                    new DeleteDatabasesOperation({ databaseNames: [database], hardDelete: true }));
            } finally {
                admin.dispose();
            }
        }
        if (dir) {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("reads and writes with the admin certificate", async () => {
        const documents = store(database, adminPfx);
        try {
            const session = documents.openSession();
            await session.store({ name: "Ada" }, "users/1");
            await session.saveChanges();
            const loaded = await documents.openSession().load("users/1");
            assert.equal(loaded.name, "Ada");
        } finally {
            documents.dispose();
        }
    });

    it("refuses a client without a certificate", async () => {
        const anonymous = store(database, null);
        try {
            await assert.rejects(
                anonymous.openSession().load("users/1"),
                error => {
                    assert.match(`${error.name}: ${error.message}`, /requires client certificate/);
                    return true;
                });
        } finally {
            anonymous.dispose();
        }
    });

    it("lets a certificate registered with Read read, and refuses its writes", async () => {
        const reader = selfSignedClient(dir, "node-reader");
        await admin.maintenance.server.send(new PutClientCertificateOperation(
            "node-reader", reader.der, { [database]: "Read" }, "ValidUser"));
        const listed = await admin.maintenance.server.send(new GetCertificatesOperation(0, 100));
        const registered = listed.find(it => it.name === "node-reader");
        assert.ok(registered, JSON.stringify(listed));
        const documents = store(database, reader.pfx);
        try {
            const loaded = await documents.openSession().load("users/1");
            assert.equal(loaded.name, "Ada");
            const session = documents.openSession();
            await session.store({ name: "Bob" }, "users/2");
            await assert.rejects(session.saveChanges(), /Could not authorize access/);
        } finally {
            documents.dispose();
            await admin.maintenance.server.send(new DeleteCertificateOperation(registered.thumbprint));
        }
    });
});
