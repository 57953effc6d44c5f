// Unit tests of the SDK's pure parts: backoff, seq tracking, URLs, emitter.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Backoff, directConv, Emitter, goawayDelay, httpBase, SeqTracker, TernClient } from "../dist/index.js";

test("backoff ceilings grow to the cap; delays are full jitter; attempts run out", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, maxAttempts: 6 });
  assert.deepEqual([0, 1, 2, 3, 4, 50].map((n) => b.ceiling(n)), [100, 200, 400, 800, 1000, 1000]);
  const seen = [];
  for (let i = 0; i < 6; i++) {
    const ceiling = b.ceiling(i);
    const d = b.next();
    assert.ok(d >= 0 && d <= ceiling, `${d} within [0, ${ceiling}]`);
    seen.push(d);
  }
  assert.equal(b.next(), null, "gives up after maxAttempts");
  b.reset();
  assert.equal(b.attempts, 0);
  const lo = new Backoff({ initialMs: 100 }, () => 0);
  const hi = new Backoff({ initialMs: 100 }, () => 1);
  assert.equal(lo.next(), 0, "jitter reaches 0");
  assert.equal(hi.next(), 100, "jitter reaches the ceiling");
  for (let i = 0; i < 50; i++) {
    const d = goawayDelay(2000);
    assert.ok(d >= 1500 && d <= 2500);
  }
});

test("seq tracker: baseline, next, duplicates, gaps, own acks", () => {
  const t = new SeqTracker();
  const c = "d:alice:bob";
  assert.deepEqual(t.accept(c, 7), { kind: "untracked" });
  assert.equal(t.lastSeen(c), 7);
  assert.deepEqual(t.accept(c, 7), { kind: "duplicate" });
  assert.deepEqual(t.accept(c, 3), { kind: "duplicate" });
  assert.deepEqual(t.accept(c, 8), { kind: "next" });
  assert.deepEqual(t.accept(c, 11), { kind: "gap", after: 8 });
  assert.equal(t.lastSeen(c), 8, "a gap is not recorded");
  t.recordOwn(c, 10);
  assert.deepEqual(t.check(c, 10), { kind: "duplicate" }, "own ack counts as seen");
  assert.deepEqual(t.accept(c, 9), { kind: "next" });
  assert.equal(t.lastSeen(c), 10, "absorbed the own ack");
  t.track(c, 4);
  assert.equal(t.lastSeen(c), 10, "never moves back");
  t.recordOwn("d:x:y", 3);
  assert.equal(t.lastSeen("d:x:y"), undefined, "own acks leave untracked convs untracked");
  assert.deepEqual(t.snapshot(), [[c, 10]]);
  t.untrack(c);
  assert.equal(t.lastSeen(c), undefined);
});

test("URLs and ids", () => {
  assert.equal(httpBase("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
  assert.equal(httpBase("ws://127.0.0.1:8080/ws"), "http://127.0.0.1:8080");
  assert.equal(httpBase("wss://chat.example.com/ws"), "https://chat.example.com");
  assert.equal(directConv("bob", "alice"), "d:alice:bob");
  assert.equal(directConv("alice", "alice"), "d:alice:alice");
  class FakeWs {}
  const c = new TernClient({ url: "https://chat.example.com", token: "t", WebSocket: FakeWs });
  assert.equal(c.wsUrl, "wss://chat.example.com/ws");
  assert.equal(c.http.base, "https://chat.example.com");
  assert.equal(c.state, "idle");
});

test("emitter: on, once, off; a throwing listener does not stop the others", () => {
  class E extends Emitter {
    fire(v) { this.emit("x", v); }
  }
  const e = new E();
  const got = [];
  const off = e.on("x", (v) => got.push(["on", v]));
  e.once("x", (v) => got.push(["once", v]));
  const origError = console.error;
  console.error = () => {};
  e.on("x", () => { throw new Error("boom"); });
  e.fire(1);
  off();
  e.fire(2);
  console.error = origError;
  assert.deepEqual(got, [["on", 1], ["once", 1]]);
});
