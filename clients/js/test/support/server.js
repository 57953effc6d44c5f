// Starts a real `tern serve` for the tests: a temporary data directory, a
// free loopback port, `--tcp off`; waits for /healthz. The binary comes from
// TERN_BIN, else $CARGO_TARGET_DIR/debug/tern, else ../../target/debug/tern.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export function ternBin() {
  const candidates = [
    process.env.TERN_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug", "tern"),
    resolve(here, "../../../../target/debug/tern"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`no tern binary: build it with \`cargo build -p tern-server\` or set TERN_BIN (tried ${candidates.join(", ")})`);
  }
  return found;
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class TernServer {
  constructor(port, dataDir, env) {
    this.port = port;
    this.dataDir = dataDir;
    this.env = env;
    this.url = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.log = [];
  }

  /** Starts a server; `env` adds TERN_* settings (e.g. shorter drain). */
  static async start(env = {}) {
    const dataDir = mkdtempSync(join(tmpdir(), "tern-js-test-"));
    const s = new TernServer(await freePort(), dataDir, env);
    await s.spawn();
    return s;
  }

  async spawn() {
    const args = ["serve", "--data", this.dataDir, "--http", `127.0.0.1:${this.port}`, "--tcp", "off"];
    this.proc = spawn(ternBin(), args, {
      env: { ...process.env, TERN_LOG_FILTER: "warn", ...this.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (d) => {
      this.log.push(String(d));
      if (this.log.length > 200) this.log.shift();
    };
    this.proc.stdout.on("data", keep);
    this.proc.stderr.on("data", keep);
    const exited = new Promise((r) => this.proc.once("exit", (code) => r(code)));
    this.exited = exited;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`tern exited early:\n${this.log.join("")}`);
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error(`tern did not answer /healthz in 30 s:\n${this.log.join("")}`);
  }

  /** Graceful stop (SIGTERM: goaway, drain); SIGKILL after 20 s. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 20_000);
    await this.exited;
    clearTimeout(t);
  }

  /** Stops, then starts again on the same port and data directory. */
  async restart(downMs = 0) {
    await this.stop();
    if (downMs) await sleep(downMs);
    await this.spawn();
  }

  /** Stops and removes the data directory. */
  async dispose() {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Polls `cond` until it returns a truthy value (or throws after `ms`). */
export async function until(cond, ms = 10_000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

let n = 0;
/** A fresh valid username. */
export function uname(base) {
  n += 1;
  return `${base}${n}${Math.random().toString(36).slice(2, 6)}`;
}
