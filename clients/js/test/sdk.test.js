// The SDK against a real `tern serve` (started by the test, see support/server.js).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { directConv, TernClient, TernError, TernHttp } from "../dist/index.js";
import { TernServer, uname, until } from "./support/server.js";

let server;
const clients = [];

before(async () => {
  // Fast goaway so restarts take little time.
  server = await TernServer.start({ TERN_LIMITS_GOAWAY_RECONNECT_MS: "300", TERN_LIMITS_DRAIN_TIMEOUT_MS: "3000" });
});

after(async () => {
  for (const c of clients) await c.close();
  await server?.dispose();
});

/** Registers and logs in a fresh user; returns {user, token, http}. */
async function account(base) {
  const user = uname(base);
  const http = new TernHttp({ url: server.url });
  await http.register(user, "correct-horse");
  const { token } = await http.login(user, "correct-horse");
  return { user, token, http };
}

/** A connected client that records its events. */
async function connected(acct, opts = {}) {
  const c = new TernClient({ url: server.url, token: acct.token, reconnect: { initialMs: 100, maxMs: 1000 }, ...opts });
  clients.push(c);
  c.events = { message: [], receipt: [], typing: [], presence: [], group: [], state: [], convs: [] };
  for (const k of Object.keys(c.events)) c.on(k, (v) => c.events[k].push(v));
  await c.connect();
  return c;
}

describe("HTTP helpers", () => {
  test("register, login, me; errors carry the protocol code and status", async () => {
    const a = await account("h");
    assert.equal((await a.http.me()).user, a.user);
    await assert.rejects(a.http.register(a.user, "correct-horse"), (e) => e instanceof TernError && e.code === "conflict" && e.status === 409);
    await assert.rejects(new TernHttp({ url: server.url }).login(a.user, "wrong-password"), (e) => e.code === "unauthorized" && e.status === 401);
    await assert.rejects(a.http.presence("nobody-here"), (e) => e.code === "not_found");
  });

  test("groups: create, add members, history over HTTP", async () => {
    const [a, b, c] = await Promise.all([account("ga"), account("gb"), account("gc")]);
    const g = await a.http.createGroup("Lunch", [b.user]);
    assert.deepEqual(g.members, [a.user, b.user].sort());
    const g2 = await a.http.addMembers(g.id, [c.user]);
    assert.equal(g2.members.length, 3);
    assert.equal((await c.http.groups())[0].id, g.id);
    const conv = `g:${g.id}`;
    for (let i = 1; i <= 5; i++) await a.http.sendMessage({ conv, cmid: `h-${i}`, body: `m${i}` });
    const page = await c.http.history(conv, { before: 4, limit: 2 });
    assert.deepEqual(page.items.map((m) => m.seq), [2, 3]);
    assert.equal(page.more, true);
    await c.http.removeMember(g.id, c.user);
    await assert.rejects(c.http.history(conv), (e) => e.code === "forbidden");
  });
});

describe("real-time client", () => {
  test("send, ack, push, receipt, typing, presence, convs, sync", async () => {
    const [a, b] = await Promise.all([account("alice"), account("bob")]);
    const ca = await connected(a);
    const cb = await connected(b);
    const conv = directConv(a.user, b.user);

    const pres = await ca.presence([b.user]);
    assert.deepEqual(pres.map((p) => [p.user, p.online]), [[b.user, true]]);

    const ack = await ca.send({ to: b.user, body: "hello bob" });
    assert.equal(ack.conv, conv);
    assert.equal(ack.seq, 1);
    assert.ok(ack.cmid.length > 0);
    const got = await until(() => cb.events.message[0], 5000, "bob's message");
    assert.equal(got.body, "hello bob");
    assert.equal(got.cmid, ack.cmid);

    cb.typing(conv);
    cb.typing(conv); // throttled: one frame
    await until(() => ca.events.typing.length > 0, 5000, "typing");
    await cb.read(conv, 1);
    const r = await until(() => ca.events.receipt[0], 5000, "receipt");
    assert.deepEqual(r, { conv, user: b.user, seq: 1 });

    const items = await cb.convs();
    assert.equal(items[0].conv, conv);
    assert.equal(items[0].unread, 0);
    const page = await cb.sync(conv, { after: 0 });
    assert.deepEqual(page.items.map((m) => m.body), ["hello bob"]);
    assert.equal(ca.events.typing.length, 1, "the second typing() was throttled");

    await cb.close();
    const off = await until(() => ca.events.presence.find((p) => p.user === b.user && !p.online), 5000, "offline presence");
    assert.equal(off.online, false);
    assert.equal(cb.state, "closed");
  });

  test("refused sends reject with the code; requests get replies by id", async () => {
    const a = await account("ref");
    const ca = await connected(a);
    await assert.rejects(ca.send({ to: "no-such-user", body: "x" }), (e) => e.code === "not_found");
    await assert.rejects(ca.send({ conv: "d:zz1:zz2", body: "x" }), (e) => e.code === "forbidden");
    await assert.rejects(ca.send({ body: "x" }), (e) => e.code === "bad_request");
    assert.deepEqual(ca.unacked(), []);
    const rtts = await Promise.all([ca.ping(), ca.ping(), ca.convs()]);
    assert.equal(rtts.length, 3);
  });

  test("duplicates are dropped and gaps are filled in order", async () => {
    const [a, b] = await Promise.all([account("gapa"), account("gapb")]);
    const conv = directConv(a.user, b.user);
    for (let i = 1; i <= 3; i++) await a.http.sendMessage({ to: b.user, cmid: `g-${i}`, body: `m${i}` });
    const cb = await connected(b, { syncPageSize: 2 });
    cb.track(conv, 0); // bob says he has nothing: seq 4 reveals a gap of 1..3
    await a.http.sendMessage({ to: b.user, cmid: "g-4", body: "m4" });
    await until(() => cb.events.message.length === 4, 5000, "gap filled");
    assert.deepEqual(cb.events.message.map((m) => m.seq), [1, 2, 3, 4]);
    // The same push again (at-least-once delivery): dropped.
    cb["onFrame"]({ type: "msg", ...cb.events.message[3] });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(cb.events.message.length, 4);
    assert.equal(cb.lastSeen(conv), 4);
  });

  test("a resync push runs convs and fetches what a tracked conversation missed", async () => {
    const [a, b] = await Promise.all([account("rsa"), account("rsb")]);
    const conv = directConv(a.user, b.user);
    for (let i = 1; i <= 2; i++) await a.http.sendMessage({ to: b.user, cmid: `r-${i}`, body: `m${i}` });
    const cb = await connected(b);
    await until(() => cb.events.convs.length === 1, 5000, "convs after connect");
    cb.track(conv, 0);
    cb["onFrame"]({ type: "resync" });
    await until(() => cb.events.message.length === 2, 5000, "resync fetched");
    assert.deepEqual(cb.events.message.map((m) => m.body), ["m1", "m2"]);
    assert.equal(cb.events.convs.length, 2);
    assert.equal(cb.events.convs[1][0].unread, 2);
  });

  test("server restart: goaway, reconnect, outbox re-sent once, missed messages caught up", async () => {
    const [a, b] = await Promise.all([account("rea"), account("reb")]);
    const conv = directConv(a.user, b.user);
    const ca = await connected(a);
    const cb = await connected(b);
    await ca.send({ to: b.user, body: "before" });
    await until(() => cb.events.message.length === 1, 5000, "first message");
    const goaways = [];
    ca.on("goaway", (g) => goaways.push(g));

    await server.stop();
    await until(() => ca.state === "reconnecting" && cb.state === "reconnecting", 5000, "both reconnecting");
    assert.equal(goaways[0]?.reconnect_ms, 300, "goaway seen before the restart");
    // Sent while the server is down: waits in the outbox.
    const pending = ca.send({ to: b.user, body: "during", cmid: "outbox-1" });
    assert.deepEqual(ca.unacked(), ["outbox-1"]);
    await server.spawn();

    const ack = await pending;
    assert.equal(ack.seq, 2);
    await until(() => cb.events.message.length === 2, 10_000, "bob caught up");
    assert.deepEqual(cb.events.message.map((m) => [m.seq, m.body]), [[1, "before"], [2, "during"]]);
    const history = await cb.sync(conv, { after: 0 });
    assert.equal(history.items.length, 2, "stored once");
    assert.ok(cb.events.state.some((s) => s.state === "reconnecting"));
    assert.equal(cb.state, "open");
  });

  test("token provider is asked on every connect; a bad static token closes with 4001", async () => {
    const a = await account("tok");
    let calls = 0;
    const c = await connected(a, { token: async () => { calls += 1; return a.token; } });
    assert.equal(calls, 1);
    assert.equal(c.user, a.user);

    const bad = new TernClient({ url: server.url, token: "not-a-jwt", reconnect: { initialMs: 50 } });
    clients.push(bad);
    const states = [];
    bad.on("state", (s) => states.push(s));
    await assert.rejects(bad.connect(), (e) => e.code === "unauthorized");
    assert.deepEqual(states.at(-1), { state: "closed", code: 4001, reason: states.at(-1).reason });
  });

  test("close() is a clean 1000 close and stops reconnecting", async () => {
    const a = await account("bye");
    const c = await connected(a);
    await c.close();
    assert.equal(c.state, "closed");
    assert.equal(c.events.state.at(-1).code, 1000);
    await assert.rejects(c.send({ to: a.user, body: "x" }), (e) => e.code === "closed");
    await assert.rejects(c.convs(), (e) => e.code === "closed");
  });
});
