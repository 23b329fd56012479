"use strict";
// Attachments with the official Node.js client: store (session and operation), get, names,
// exists, delete.

const { describe, it, before, after } = require("node:test");
const assert = require("node:assert/strict");
const {
    PutAttachmentOperation,
    GetAttachmentOperation,
    DeleteAttachmentOperation,
} = require("ravendb");
const corvid = require("../lib/corvid");

async function readAll(stream) {
    const chunks = [];
    for await (const chunk of stream) {
        chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks);
}

describe("attachments", () => {
    let db;

    before(async () => {
        db = await corvid.openDatabase("attachments");
        const session = db.store.openSession();
        await session.store({ name: "Alice" }, "users/1");
        await session.saveChanges();
    });

    after(async () => {
        await db.close();
    });

    it("stores attachments in a session and reads them back with their names", async () => {
        const photo = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0x10]);
        const session = db.store.openSession();
        const user = await session.load("users/1");
        session.advanced.attachments.store(user, "photo.png", photo, "image/png");
        session.advanced.attachments.store("users/1", "notes.txt", Buffer.from("hello"), "text/plain");
        await session.saveChanges();

        const reader = db.store.openSession();
        const loaded = await reader.load("users/1");
        const names = reader.advanced.attachments.getNames(loaded);
        assert.deepEqual(names.map(it => it.name).sort(), ["notes.txt", "photo.png"]);
        const photoName = names.find(it => it.name === "photo.png");
        assert.equal(photoName.contentType, "image/png");
        assert.equal(photoName.size, photo.length);
        assert.equal(typeof photoName.hash, "string");

        const attachment = await reader.advanced.attachments.get("users/1", "photo.png");
        try {
            assert.equal(attachment.details.name, "photo.png");
            assert.equal(attachment.details.contentType, "image/png");
            assert.equal(attachment.details.size, photo.length);
            assert.equal(attachment.details.documentId, "users/1");
            assert.deepEqual(await readAll(attachment.data), photo);
        } finally {
            attachment.dispose();
        }
        assert.equal(await reader.advanced.attachments.exists("users/1", "photo.png"), true);
        assert.equal(await reader.advanced.attachments.exists("users/1", "nope.png"), false);
        assert.equal(await reader.advanced.attachments.get("users/1", "nope.png"), null);
    });

    it("puts, gets and deletes an attachment with operations", async () => {
        const content = Buffer.from("a,b\n1,2\n");
        const details = await db.store.operations.send(
            new PutAttachmentOperation("users/1", "data.csv", content, "text/csv"));
        assert.equal(details.name, "data.csv");
        assert.equal(details.size, content.length);
        assert.equal(details.documentId, "users/1");
        assert.equal(typeof details.changeVector, "string");

        const fetched = await db.store.operations.send(
            new GetAttachmentOperation("users/1", "data.csv", "Document", null));
        try {
            assert.equal(fetched.details.contentType, "text/csv");
            assert.deepEqual(await readAll(fetched.data), content);
        } finally {
            fetched.dispose();
        }

        await db.store.operations.send(new DeleteAttachmentOperation("users/1", "data.csv"));
        const session = db.store.openSession();
        assert.equal(await session.advanced.attachments.exists("users/1", "data.csv"), false);
        const user = await session.load("users/1");
        assert.ok(!session.advanced.attachments.getNames(user).some(it => it.name === "data.csv"));
    });

    it("deletes an attachment in a session", async () => {
        const writer = db.store.openSession();
        writer.advanced.attachments.store("users/1", "temp.bin", Buffer.from([1, 2, 3]), "application/octet-stream");
        await writer.saveChanges();

        const session = db.store.openSession();
        session.advanced.attachments.delete("users/1", "temp.bin");
        await session.saveChanges();
        assert.equal(await db.store.openSession().advanced.attachments.exists("users/1", "temp.bin"), false);
    });
});
