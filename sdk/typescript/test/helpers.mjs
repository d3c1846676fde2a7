// Starts a real `latchkey serve --dev` for a test file: a fresh temp directory, an ephemeral
// port, one configured approver (alice, every path). Every wait here is bounded.

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const BIN = process.env.LATCHKEY_BIN;

export function requireBin() {
  if (!BIN) throw new Error("set LATCHKEY_BIN to the latchkey binary (run-tests.sh does)");
  return BIN;
}

/** Polls `fn` until it returns a truthy value; fails after `ms`. */
export async function eventually(fn, { ms = 10_000, every = 50, what = "condition" } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export async function startDaemon() {
  const bin = requireBin();
  const dir = await mkdtemp(join(tmpdir(), "latchkey-sdk-ts-"));
  await writeFile(
    join(dir, "config.toml"),
    '[[approvers]]\nname = "alice"\npatterns = ["**"]\n',
  );
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("LATCHKEY_")) env[k] = v;
  const child = spawn(bin, ["serve", "--dev", "--listen", "127.0.0.1:0", "--config", "config.toml"], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    logs += d;
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  const { addr, token } = await new Promise((resolve, reject) => {
    const out = { addr: "", token: "" };
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      rl.close();
      reject(new Error(`latchkey did not start within 20 s; stderr:\n${logs}`));
    }, 20_000);
    rl.on("line", (line) => {
      if (line.startsWith("export LATCHKEY_ADDR=")) out.addr = line.slice("export LATCHKEY_ADDR=".length);
      else if (line.startsWith("export LATCHKEY_TOKEN=")) out.token = line.slice("export LATCHKEY_TOKEN=".length);
      else if (line.startsWith("# try: curl")) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`latchkey exited (${code ?? signal}) before printing its address; stderr:\n${logs}`));
    });
  });
  if (!addr.startsWith("http://127.0.0.1:") || !token.startsWith("lk_admin_")) {
    throw new Error(`unexpected serve --dev output: ${addr} ${token.slice(0, 9)}…`);
  }
  // Keep draining stdout so the daemon never blocks on a full pipe.
  child.stdout.resume();

  /** Raw admin call (setup the SDK does not cover: agents, grants, services, approver tokens). */
  async function admin(method, path, body) {
    const res = await fetch(addr + path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return data;
  }

  return {
    addr,
    adminToken: token,
    dir,
    logs: () => logs,
    admin,
    /** Registers an agent; returns { id, key }. */
    async createAgent(name, tier = 2) {
      const a = await admin("POST", "/v1/agents", { name, trust_tier: tier });
      return { id: a.agent.id, key: a.api_key, namespace: a.agent.namespace };
    },
    /** An API token for the configured approver. */
    async approverToken(name = "alice") {
      return (await admin("POST", `/v1/approvers/${name}/tokens`)).token;
    },
    /** SIGTERM, then at most 15 s before SIGKILL; removes the temp directory. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
