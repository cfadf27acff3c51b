// aaosctl as one file: `make aaosctl` compiles cli/main.ts with Bun into
// out/aaosctl, and `make install` copies it to PREFIX/bin. The binary must run
// where no Bun is on PATH (a fresh machine keeps Bun in node_modules/.bin), so
// every run here has PATH=/usr/bin:/bin, against a real host-mode kernel.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { Keys, Terminal } from "./terminal.ts";

setDefaultTimeout(20_000);

const ROOT = resolve(import.meta.dir, "../..");
const BINARY = join(ROOT, "out/aaosctl");
const BARE_PATH = "/usr/bin:/bin";
const MAKE = Bun.which("make") ?? "make";

/** the environment of a fresh shell: no Bun on PATH, no aaOS variables, no outer make's jobserver */
function bareEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("AAOS_") || ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"].includes(k))
      continue;
    env[k] = v;
  }
  env.PATH = BARE_PATH;
  return env;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], timeoutMs = 15_000): Promise<Run> {
  const proc = Bun.spawn(argv, { cwd: ROOT, env: bareEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

let k: RunningKernel;
let staging: string;
const ctl = (...args: string[]) => run([BINARY, "--socket", k.socket, ...args]);

beforeAll(async () => {
  staging = mkdtempSync(join(tmpdir(), "aaos-install-"));
  const made = await run([MAKE, "--no-print-directory", "aaosctl"], 90_000);
  if (made.code !== 0) throw new Error(`make aaosctl failed (${made.code}):\n${made.stdout}\n${made.stderr}`);
  k = await startKernel({
    manifests: { echoer: "name: echoer\nmodel: claude-haiku-4-5-20251001\ncapabilities: [echo]\n" },
  });
}, 120_000);
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
  if (staging) rmSync(staging, { recursive: true, force: true });
});

describe("make aaosctl", () => {
  test("out/aaosctl is one executable: an ELF file, not a script for bun", () => {
    expect(statSync(BINARY).mode & 0o111).not.toBe(0);
    expect(readFileSync(BINARY).subarray(0, 4)).toEqual(Buffer.from("\x7fELF", "latin1"));
    // the premise of the test: nothing called bun on the PATH it runs with
    expect(BARE_PATH.split(":").some((d) => existsSync(join(d, "bun")))).toBe(false);
  });

  test("a second make has nothing to do", async () => {
    const r = await run([MAKE, "--no-print-directory", "-q", "out/aaosctl"]);
    expect(r.code).toBe(0);
  });

  test("--help, and a verb's --help", async () => {
    const r = await run([BINARY, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("usage: aaosctl");
    expect(r.stdout).toContain("ping");
    const v = await run([BINARY, "status", "--help"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("AGENT");
    // the version is bundled into the binary (package.json is not beside it)
    const ver = await run([BINARY, "version"]);
    expect(ver.stdout).toContain(JSON.parse(readFileSync(join(import.meta.dir, "../../package.json"), "utf8")).version);
    expect(ver.stdout).not.toContain("unknown");
  });

  test("ping reaches the kernel on its socket", async () => {
    const r = await ctl("ping");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pong in /);
  });

  test("info --json is the kernel's system.info", async () => {
    const r = await ctl("info", "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ boot_id: k.ready.boot_id, mode: "host", version: k.ready.version });
  });

  test("spawn, ps and status of an agent, as a table and as JSON", async () => {
    const s = await ctl("spawn", "echoer", "--json");
    expect(s.code).toBe(0);
    const id: string = JSON.parse(s.stdout).agent_id;
    expect(id).toMatch(/^ag-/);
    const ps = await ctl("ps");
    expect(ps.code).toBe(0);
    expect(ps.stdout).toMatch(new RegExp(`${id}\\s+echoer\\s+ready`));
    const st = await ctl("status", id);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(id);
    const j = await ctl("status", id, "--json");
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({ agent_id: id, state: "ready" });
  });

  test("exit codes: 1 for a refusal, 2 for usage, 3 when nothing answers", async () => {
    expect((await ctl("status", "ag-0000000000000000")).code).toBe(1);
    expect((await ctl("no-such-verb")).code).toBe(2);
    const gone = await run([BINARY, "--socket", join(staging, "none.sock"), "--wait", "1", "ping"]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain("none.sock");
  });

  test("the console runs on a terminal and leaves with Ctrl-D", async () => {
    const term = new Terminal([BINARY, "--socket", k.socket, "console"], {
      env: { ...bareEnv(), AAOSCTL_HISTORY: join(staging, "history") },
    });
    try {
      await term.waitFor("aaos>");
      term.line("ping");
      await term.waitFor("pong in ");
      term.type(Keys.ctrlD);
      expect(await term.exited).toBe(0);
    } finally {
      term.kill();
    }
  });
});

describe("make install", () => {
  test("DESTDIR and PREFIX: an executable at DESTDIR/PREFIX/bin/aaosctl that runs", async () => {
    const r = await run([MAKE, "--no-print-directory", "install", `DESTDIR=${staging}`, "PREFIX=/usr"], 60_000);
    expect(r.code).toBe(0);
    const installed = join(staging, "usr/bin/aaosctl");
    expect(statSync(installed).mode & 0o777).toBe(0o755);
    const p = await run([installed, "--socket", k.socket, "ping"]);
    expect(p.code).toBe(0);
    expect(p.stdout).toMatch(/^pong in /);
  });
});
