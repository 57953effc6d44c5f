// Browser helpers of the end-to-end tests: Debian's Chromium driven by
// playwright-core (no browser download), one context per user, and
// screenshots of every open page when a test fails.
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const RESULTS = resolve(process.env.TERN_E2E_RESULTS ?? join(here, "..", "..", "test-results"));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WAIT = 15_000;

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}

/** A user's browser window: its own context (cookies, storage). */
export async function userPage(browser, baseURL, viewport = { width: 1100, height: 720 }) {
  const context = await browser.newContext({ baseURL, viewport, deviceScaleFactor: 1, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
  await page.goto("/");
  return page;
}

/**
 * Runs `fn(pages)`; on failure saves a screenshot of every page in `pages`
 * and names the directory in the error.
 */
export async function withScreenshots(name, pages, fn) {
  try {
    await fn();
  } catch (e) {
    const dir = join(RESULTS, name.replace(/[^a-z0-9]+/gi, "-").toLowerCase());
    mkdirSync(dir, { recursive: true });
    for (const [who, page] of Object.entries(pages)) {
      try {
        if (!page.isClosed()) await page.screenshot({ path: join(dir, `${who}.png`), fullPage: true });
      } catch {
        // a crashed page has no picture
      }
    }
    const errors = Object.entries(pages).flatMap(([who, p]) => (p.errors ?? []).map((x) => `${who}: ${x}`));
    e.message += `\nscreenshots: ${dir}${errors.length ? `\npage errors:\n${errors.join("\n")}` : ""}`;
    throw e;
  }
}

/** Registers (and so logs in) `user` on the sign-in form. */
export async function register(page, user, password = "correct-horse") {
  await page.getByLabel("Username", { exact: true }).fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator("#me-name", { hasText: user }).waitFor();
  await page.locator("#banner").waitFor({ state: "hidden" });
}

/** Opens (or starts) the direct chat with `peer`. */
export async function chatWith(page, peer) {
  await page.getByLabel("Start a chat with username").fill(peer);
  await page.getByRole("button", { name: "Start chat" }).click();
  await page.locator("#chat-name", { hasText: peer }).waitFor();
}

/** Opens a conversation from the list by its title. */
export async function openConv(page, title) {
  await page.locator(".conv-list .conv", { hasText: title }).first().click();
  await page.locator("#chat-name", { hasText: title }).waitFor();
}

/** Types and sends `text` in the open chat (Enter). */
export async function send(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** The message item showing `text` in the open chat. */
export function msg(page, text) {
  return page.locator("#messages li.msg", { has: page.locator(".body", { hasText: text }) });
}

/** Waits until `fn` (run in the page) returns true. */
export async function waitFor(page, fn, arg) {
  await page.waitForFunction(fn, arg, { timeout: WAIT, polling: 50 });
}

/** The unread badge number of a conversation in the list (0 if none). */
export async function unread(page, title) {
  const badge = page.locator(".conv-list .conv", { hasText: title }).locator(".unread");
  return (await badge.count()) === 0 ? 0 : Number(await badge.textContent());
}
