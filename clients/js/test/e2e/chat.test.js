// The embedded chat UI in real headless Chromium against a real server:
// two (and three) users in separate browser contexts.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { TernServer, uname } from "../support/server.js";
import { chatWith, launch, msg, openConv, register, RESULTS, send, unread, userPage, waitFor, withScreenshots } from "./browser.js";

const here = dirname(fileURLToPath(import.meta.url));
let server;
let browser;

before(async () => {
  server = await TernServer.start({ TERN_LIMITS_GOAWAY_RECONNECT_MS: "500", TERN_LIMITS_DRAIN_TIMEOUT_MS: "3000" });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.dispose();
});

test("alice and bob: chat both ways, delivered and read, typing, presence", async () => {
  // Plain names (the server is fresh): this test also takes docs/ui.png.
  const [alice, bob] = ["alice", "bob"];
  const pa = await userPage(browser, server.url);
  const pb = await userPage(browser, server.url);
  await withScreenshots("chat both ways", { alice: pa, bob: pb }, async () => {
    await register(pa, alice);
    await register(pb, bob);
    await chatWith(pa, bob);
    await pa.locator(`.conv-list [data-conv] .dot.on`).waitFor(); // bob is online
    await send(pa, "Hi bob! Lunch at 12:30?");
    await msg(pa, "Lunch at 12:30?").and(pa.locator('[data-status="delivered"]')).waitFor();

    // bob: the conversation appears with one unread message.
    await pb.locator(".conv-list .conv", { hasText: alice }).waitFor();
    assert.equal(await unread(pb, alice), 1);
    assert.match(await pb.locator(".conv-list .conv", { hasText: alice }).textContent(), /Lunch at 12:30\?/);
    await openConv(pb, alice);
    await msg(pb, "Lunch at 12:30?").waitFor();
    assert.equal(await unread(pb, alice), 0);
    // alice sees it read.
    await msg(pa, "Lunch at 12:30?").and(pa.locator('[data-status="read"]')).waitFor();

    // bob types: alice sees the indicator; then his answer arrives.
    await pb.getByLabel("Message", { exact: true }).pressSequentially("Sure", { delay: 20 });
    await pa.locator("#typing", { hasText: `${bob} is typing` }).waitFor();
    await pb.getByLabel("Message", { exact: true }).fill("Sure, see you there.");
    await pb.getByLabel("Message", { exact: true }).press("Enter");
    await msg(pa, "see you there").waitFor();
    await waitFor(pa, () => document.getElementById("typing").textContent === "");
    await send(pa, "Great, I booked a table by the window.");
    await msg(pb, "booked a table").waitFor();
    await msg(pa, "booked a table").and(pa.locator('[data-status="read"]')).waitFor();

    // The documentation screenshot: alice's window.
    mkdirSync(RESULTS, { recursive: true });
    const shot = join(RESULTS, "ui.png");
    await pa.screenshot({ path: shot });
    if (process.env.TERN_UPDATE_SCREENSHOT) copyFileSync(shot, resolve(here, "../../../../docs/ui.png"));
    assert.deepEqual([...pa.errors, ...pb.errors], []);
  });
  await pa.context().close();
  await pb.context().close();
});

test("a group of three: create, add a member, everyone sees everyone", async () => {
  const [alice, bob, carol] = [uname("alice"), uname("bob"), uname("carol")];
  const [pa, pb, pc] = await Promise.all([1, 2, 3].map(() => userPage(browser, server.url)));
  await withScreenshots("group of three", { alice: pa, bob: pb, carol: pc }, async () => {
    await register(pa, alice);
    await register(pb, bob);
    await register(pc, carol);
    await pa.locator("#group-box summary").click();
    await pa.getByLabel("Group name").fill("Trio");
    await pa.getByLabel("Members (comma separated)").fill(bob);
    await pa.getByRole("button", { name: "Create group" }).click();
    await pa.locator("#chat-name", { hasText: "Trio" }).waitFor();
    await pa.locator("#add-box summary").click();
    await pa.getByLabel("Username to add").fill(carol);
    await pa.getByRole("button", { name: "Add", exact: true }).click();
    await pa.locator("#chat-sub", { hasText: carol }).waitFor();

    await send(pa, "Welcome to the trio");
    await pb.locator(".conv-list .conv", { hasText: "Trio" }).waitFor();
    await pc.locator(".conv-list .conv", { hasText: "Trio" }).waitFor();
    await openConv(pb, "Trio");
    await openConv(pc, "Trio");
    await msg(pb, "Welcome to the trio").waitFor();
    await msg(pc, "Welcome to the trio").waitFor();
    await send(pb, "hello from bob");
    await send(pc, "hello from carol");
    for (const p of [pa, pb, pc]) {
      await msg(p, "hello from bob").waitFor();
      await msg(p, "hello from carol").waitFor();
    }
    // Sender names are shown on other people's messages in a group.
    await msg(pa, "hello from carol").locator(".from", { hasText: carol }).waitFor();
    assert.equal(await pa.locator("#messages li.msg").count(), 3);
  });
  for (const p of [pa, pb, pc]) await p.context().close();
});

test("bob offline, then back: catch-up and unread counts; logout", async () => {
  const [alice, bob] = [uname("alice"), uname("bob")];
  const pa = await userPage(browser, server.url);
  const pb = await userPage(browser, server.url);
  await withScreenshots("offline catch-up", { alice: pa, bob: pb }, async () => {
    await register(pa, alice);
    await register(pb, bob);
    await chatWith(pa, bob);
    await send(pa, "first");
    await pb.locator(".conv-list .conv", { hasText: alice }).waitFor();
    await pb.goto("about:blank"); // bob leaves the page (his tab keeps the session)
    await pa.locator(".conv-list .dot.off").waitFor();
    for (const t of ["second", "third", "fourth"]) await send(pa, t);
    await msg(pa, "fourth").and(pa.locator('[data-status="delivered"]')).waitFor();

    await pb.goto("/");
    await pb.locator("#me-name", { hasText: bob }).waitFor();
    await waitFor(pb, () => document.querySelector(".conv-list .unread")?.textContent === "4");
    await pa.locator(".conv-list .dot.on").waitFor(); // alice sees him back
    await openConv(pb, alice);
    for (const t of ["first", "second", "third", "fourth"]) await msg(pb, t).waitFor();
    assert.equal(await pb.locator("#messages li.msg").count(), 4);
    assert.equal(await unread(pb, alice), 0);
    await msg(pa, "fourth").and(pa.locator('[data-status="read"]')).waitFor();

    // Logout: back to the sign-in form; alice sees bob go offline.
    await pb.getByRole("button", { name: "Log out" }).click();
    await pb.getByLabel("Username", { exact: true }).waitFor();
    await pa.locator(".conv-list .dot.off").waitFor();
    assert.equal(await pb.evaluate(() => sessionStorage.getItem("tern.session")), null);
  });
  await pa.context().close();
  await pb.context().close();
});

test("phone-sized viewport: one pane at a time, no horizontal scrolling", async () => {
  const [alice, bob] = [uname("alice"), uname("bob")];
  const phone = { width: 390, height: 760 };
  const pa = await userPage(browser, server.url, phone);
  const pb = await userPage(browser, server.url);
  await withScreenshots("phone viewport", { alice: pa, bob: pb }, async () => {
    await register(pa, alice);
    await register(pb, bob);
    await chatWith(pa, bob);
    assert.equal(await pa.locator(".sidebar").isVisible(), false, "the list hides while a chat is open");
    await send(pa, "sent from a phone, with a rather long line that has to wrap nicely on a narrow screen");
    await pb.locator(".conv-list .conv", { hasText: "sent from a phone" }).waitFor();
    await openConv(pb, alice);
    await msg(pb, "sent from a phone").waitFor();
    await send(pb, "got it");
    await msg(pa, "got it").waitFor();
    const overflow = await pa.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
    await pa.screenshot({ path: join(RESULTS, "ui-phone-chat.png") });
    await pa.getByRole("button", { name: "Back to conversations" }).click();
    await pa.locator(".conv-list .conv", { hasText: bob }).waitFor();
    assert.equal(await pa.locator("#chat").isVisible(), false);
    await pa.screenshot({ path: join(RESULTS, "ui-phone-list.png") });
  });
  await pa.context().close();
  await pb.context().close();
});

test("server restart during the session: banner, then recovery without lost or doubled messages", async () => {
  const [alice, bob] = [uname("alice"), uname("bob")];
  const pa = await userPage(browser, server.url);
  const pb = await userPage(browser, server.url);
  await withScreenshots("server restart", { alice: pa, bob: pb }, async () => {
    await register(pa, alice);
    await register(pb, bob);
    await chatWith(pa, bob);
    await send(pa, "before the restart");
    await openConv(pb, alice);
    await msg(pb, "before the restart").waitFor();

    await server.stop();
    await pa.locator("#banner", { hasText: "Reconnecting" }).waitFor();
    await pb.locator("#banner", { hasText: "Reconnecting" }).waitFor();
    await send(pa, "sent while the server was down");
    await msg(pa, "while the server was down").and(pa.locator('[data-status="pending"]')).waitFor();
    await pa.screenshot({ path: join(RESULTS, "ui-reconnecting.png") });
    await server.spawn();

    await pa.locator("#banner").waitFor({ state: "hidden", timeout: 30_000 });
    await pb.locator("#banner").waitFor({ state: "hidden", timeout: 30_000 });
    await msg(pa, "while the server was down").and(pa.locator('[data-status="delivered"], [data-status="read"]')).waitFor();
    await msg(pb, "while the server was down").waitFor();
    await send(pb, "and after it");
    await msg(pa, "and after it").waitFor();
    for (const p of [pa, pb]) {
      const bodies = await p.locator("#messages li.msg .body").allTextContents();
      assert.deepEqual(bodies, ["before the restart", "sent while the server was down", "and after it"]);
    }
  });
  await pa.context().close();
  await pb.context().close();
});
