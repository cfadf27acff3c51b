// aaosctl logs, ls and cat against a real host-mode kernel, each run as its
// own process: logs --tail, logs -f printing a line logged meanwhile, ls of
// nested directories, and cat of a 3 MiB binary file through a pipe, byte
// for byte (paged by fs.read at tools.file_read_max_bytes).
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl, CliProcess, MAIN } from "./run-cli.ts";

setDefaultTimeout(60_000);

let k: RunningKernel;
let S: string[];
const big = randomBytes(3 * 1024 * 1024 + 5);
const cli = (...args: string[]) => aaosctl([...S, ...args], { timeoutMs: 60_000 });

beforeAll(async () => {
  k = await startKernel({});
  S = ["--socket", k.socket];
  const files = join(k.dataDir, "files");
  mkdirSync(join(files, "reports", "2026"), { recursive: true });
  writeFileSync(join(files, "reports", "2026", "q1.md"), "# Q1\n");
  writeFileSync(join(files, "reports", "summary.txt"), "all good\n");
  writeFileSync(join(files, "big.bin"), big);
  symlinkSync(join(k.dataDir, "audit"), join(files, "audit-link"));
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

test("logs --tail N: the newest lines as TIME LEVEL msg key=value", async () => {
  for (let i = 0; i < 4; i++) (await k.connect()).client.close();
  await Bun.sleep(300);
  const r = await cli("logs", "--tail", "3");
  expect(r.code).toBe(0);
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines.length).toBe(3);
  for (const l of lines)
    expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /);
  expect(r.stdout).toContain("connection opened conn=");
  const all = await cli("logs", "--tail", "10000");
  expect(all.stdout).toMatch(/ INFO  aaos kernel ready version=\S+ boot_id=/);
  const json = await cli("logs", "--tail", "2", "--json");
  const parsed = JSON.parse(json.stdout);
  expect(parsed.lines.length).toBe(2);
  expect(typeof parsed.lines[0].msg).toBe("string");
  const none = await cli("logs", "--since", new Date(Date.now() + 60_000).toISOString());
  expect(none.code).toBe(0);
  expect(none.stdout).toBe("");
  const init = await cli("logs", "--source", "init");
  expect(init.code).toBe(1);
  expect(init.stderr).toContain("host mode has no init");
});

test("logs -f prints a line logged meanwhile", async () => {
  const p = new CliProcess([...S, "logs", "-f", "--tail", "0"]);
  try {
    // --tail 0 prints nothing at first: every "connection opened" it prints was logged while it followed
    for (let i = 0; i < 100 && !p.stdout.includes("connection opened"); i++) {
      (await k.connect()).client.close();
      await Bun.sleep(100);
    }
    expect(p.stdout).toMatch(/Z DEBUG connection opened conn=\d+ transport=unix\n/);
  } finally {
    p.signal("SIGINT");
    await p.exited;
  }
});

test("ls: the root and a nested directory", async () => {
  const root = await cli("ls");
  expect(root.code).toBe(0);
  const rows = root.stdout.trimEnd().split("\n");
  expect(rows[0]).toMatch(/^TYPE\s+SIZE\s+NAME$/);
  expect(rows.slice(1).map((r) => r.split(/\s+/))).toEqual([
    ["symlink", expect.any(String), "audit-link"],
    ["file", String(big.length), "big.bin"],
    ["dir", expect.any(String), "reports/"],
  ]);
  const nested = await cli("ls", "/reports/2026");
  expect(nested.stdout.trimEnd().split("\n").slice(1)).toEqual([expect.stringMatching(/^file\s+5\s+q1\.md$/)]);
  const json = JSON.parse((await cli("ls", "reports", "--json")).stdout);
  expect(json.entries.map((e: any) => e.name)).toEqual(["2026", "summary.txt"]);
  const escape = await cli("ls", "/../audit");
  expect(escape.code).toBe(4);
  expect(escape.stderr).toContain("escape refused");
  const link = await cli("ls", "/audit-link");
  expect(link.code).toBe(4);
});

test("cat: a text file, and a 3 MiB binary file through a pipe byte for byte", async () => {
  const text = await cli("cat", "/reports/2026/q1.md");
  expect(text.code).toBe(0);
  expect(text.stdout).toBe("# Q1\n");
  const proc = Bun.spawn([process.execPath, MAIN, ...S, "cat", "big.bin"], { stdout: "pipe", stderr: "pipe" });
  const [bytes, stderr, code] = await Promise.all([
    new Response(proc.stdout).arrayBuffer(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect(stderr).toBe("");
  expect(code).toBe(0);
  const got = Buffer.from(bytes);
  expect(got.length).toBe(big.length);
  expect(createHash("sha256").update(got).digest("hex")).toBe(createHash("sha256").update(big).digest("hex"));
  // 1 MiB a page: four fs.read records
  const audit = await k.client.call<{ events: any[] }>("audit.query", { kind: "fs.read", limit: 1000 });
  expect(audit.events.filter((e) => e.path === "/big.bin" && e.ok).length).toBe(4);
  const missing = await cli("cat", "/nope");
  expect(missing.code).toBe(1);
  const dir = await cli("cat", "/reports");
  expect(dir.code).toBe(1);
  expect(dir.stderr).toContain("is a directory");
});
