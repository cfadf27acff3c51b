// The operator's logs and the agents' files through the socket of a real
// host-mode kernel: system.logs (tail, since, follow with system.log
// notifications, a source with no file) and fs.list / fs.read over
// <data>/files (nested directories, paging a large file byte-exact, `..`,
// absolute paths, a symlink to the audit log refused, kernel-private state
// unreachable, the audit records).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RpcClient } from "../../cli/client.ts";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
const MAX = 64 * 1024; // tools.file_read_max_bytes of this kernel
let k: RunningKernel;
let files: string;
const big = randomBytes(300 * 1024 + 17);

beforeAll(async () => {
  k = await startKernel({
    kernelYaml: `tools:\n  file_read_max_bytes: ${MAX}\n`,
  });
  files = join(k.dataDir, "files");
  mkdirSync(join(files, "reports", "2026"), { recursive: true });
  writeFileSync(join(files, "reports", "2026", "q1.md"), "# Q1\n");
  writeFileSync(join(files, "reports", "summary.txt"), "all good\n");
  writeFileSync(join(files, "big.bin"), big);
  symlinkSync(join(k.dataDir, "audit"), join(files, "audit-link"));
  symlinkSync(join(k.dataDir, "audit"), join(files, "reports", "sneaky"));
});
afterAll(async () => {
  await k?.stop();
  if (k) cleanup(k);
});

type Rec = { kind: string; agent_id: string | null; path?: string; ok?: boolean; bytes?: number; entries?: number };
async function records(kind: string): Promise<Rec[]> {
  const r = await k.client.call<{ events: Rec[] }>("audit.query", { kind, limit: 1000 });
  return r.events;
}

describe("fs.list / fs.read", () => {
  test("the root of files/ and a nested directory, symlinks shown as such", async () => {
    const root = await k.client.call<any>("fs.list", { path: "/" });
    expect(root.path).toBe("/");
    expect(root.truncated).toBe(false);
    expect(root.entries.map((e: any) => [e.name, e.type])).toEqual([
      ["audit-link", "symlink"],
      ["big.bin", "file"],
      ["reports", "dir"],
    ]);
    expect(root.entries.find((e: any) => e.name === "big.bin").size).toBe(big.length);
    const nested = await k.client.call<any>("fs.list", { path: "reports/2026" });
    expect(nested.path).toBe("/reports/2026");
    expect(nested.entries).toEqual([{ name: "q1.md", type: "file", size: 5 }]);
    // the default is the root
    expect((await k.client.call<any>("fs.list", {})).path).toBe("/");
  });

  test("a text file", async () => {
    const r = await k.client.call<any>("fs.read", { path: "/reports/2026/q1.md" });
    expect(r).toEqual({
      path: "/reports/2026/q1.md",
      offset: 0,
      bytes: 5,
      size: 5,
      eof: true,
      encoding: "utf-8",
      text: "# Q1\n",
    });
  });

  test("a large binary file, paged at the limit, byte-exact", async () => {
    const parts: Buffer[] = [];
    let offset = 0;
    let pages = 0;
    for (;;) {
      const r = await k.client.call<any>("fs.read", { path: "/big.bin", offset });
      expect(r.bytes).toBeLessThanOrEqual(MAX);
      expect(r.size).toBe(big.length);
      const b = r.encoding === "base64" ? Buffer.from(r.data_base64, "base64") : Buffer.from(r.text, "utf8");
      expect(b.length).toBe(r.bytes);
      parts.push(b);
      offset += r.bytes;
      pages++;
      if (r.eof) break;
    }
    expect(pages).toBe(Math.ceil(big.length / MAX));
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    // length asks for fewer; past the end is empty and eof
    const few = await k.client.call<any>("fs.read", { path: "/big.bin", offset: 10, length: 7 });
    expect(Buffer.from(few.data_base64 ?? "", "base64").equals(big.subarray(10, 17)) || few.text !== undefined).toBe(
      true,
    );
    expect(few.bytes).toBe(7);
    const past = await k.client.call<any>("fs.read", { path: "/big.bin", offset: big.length + 5 });
    expect(past.bytes).toBe(0);
    expect(past.eof).toBe(true);
    // more than the limit is cut to it
    const capped = await k.client.call<any>("fs.read", { path: "/big.bin", length: MAX * 4 });
    expect(capped.bytes).toBe(MAX);
    expect(capped.eof).toBe(false);
  });

  test("`..` out of files/ is refused", async () => {
    for (const path of ["..", "/../audit", "reports/../../audit", "../state/agents.db"]) {
      const e = await rpcError(k.client.call("fs.list", { path }), -32001);
      expect(e.message).toContain("escape refused");
    }
    await rpcError(k.client.call("fs.read", { path: "/../kernel.log" }), -32001);
    // `..` that stays inside is fine
    const r = await k.client.call<any>("fs.read", { path: "reports/2026/../summary.txt" });
    expect(r.text).toBe("all good\n");
  });

  test("absolute paths are relative to files/: the host's or the data directory's own names reach nothing", async () => {
    // what the host calls <data>/audit is <data>/files/<data>/audit here: not there
    await rpcError(k.client.call("fs.list", { path: join(k.dataDir, "audit") }), -32602);
    await rpcError(k.client.call("fs.read", { path: "/etc/passwd" }), -32602);
    await rpcError(k.client.call("fs.read", { path: resolve(k.dir, "kernel.log") }), -32602);
  });

  test("a symlink inside files/ pointing at <data>/audit is refused, as the last component and on the way", async () => {
    await rpcError(k.client.call("fs.list", { path: "/audit-link" }), -32001);
    await rpcError(k.client.call("fs.read", { path: "/audit-link/segment-000001.jsonl" }), -32001);
    await rpcError(k.client.call("fs.list", { path: "/reports/sneaky" }), -32001);
    const sneaky = await k.client.call<any>("fs.list", { path: "/reports" });
    expect(sneaky.entries.find((e: any) => e.name === "sneaky").type).toBe("symlink");
  });

  test("a hard link to another name is refused", async () => {
    writeFileSync(join(k.dir, "outside.txt"), "outside\n");
    linkSync(join(k.dir, "outside.txt"), join(files, "hard.txt"));
    const e = await rpcError(k.client.call("fs.read", { path: "/hard.txt" }), -32001);
    expect(e.message).toContain("hard link");
    rmSync(join(files, "hard.txt"));
  });

  test("directories and files in the wrong call", async () => {
    await rpcError(k.client.call("fs.read", { path: "/reports" }), -32602);
    await rpcError(k.client.call("fs.read", { path: "/" }), -32602);
    await rpcError(k.client.call("fs.list", { path: "/big.bin" }), -32602);
    await rpcError(k.client.call("fs.read", { path: "/nope" }), -32602);
    await rpcError(k.client.call("fs.read", { path: "/big.bin", offset: -1 }), -32602);
  });

  test("a file an agent wrote through file_write is what fs.read returns", async () => {
    const yaml = `name: scribe\nmodel: ${MODEL}\ncapabilities:\n  - "file_write: ${files}/*"\n`;
    const a = await k.client.call<any>("agent.spawn", { manifest: yaml });
    await k.client.call("tool.invoke", {
      agent_id: a.agent_id,
      tool: "file_write",
      input: { path: `${files}/out/notes.md`, content: "written by an agent\n" },
    });
    const r = await k.client.call<any>("fs.read", { path: "/out/notes.md" });
    expect(r.text).toBe("written by an agent\n");
    await k.client.call("agent.stop", { agent_id: a.agent_id });
  });

  test("each call is audited with its path and bytes, refusals too", async () => {
    const reads = await records("fs.read");
    const q1 = reads.find((r) => r.path === "/reports/2026/q1.md" && r.ok);
    expect(q1).toMatchObject({ agent_id: null, ok: true, bytes: 5 });
    expect(reads.some((r) => r.path === "/../kernel.log" && r.ok === false)).toBe(true);
    const lists = await records("fs.list");
    expect(lists.find((r) => r.path === "/reports/2026")).toMatchObject({ ok: true, entries: 1 });
    expect(lists.some((r) => r.path === "/audit-link" && r.ok === false)).toBe(true);
  });

  test("a viewer may call them (read-only methods)", async () => {
    const { READ_ONLY_METHODS } = await import("../../kernel/rpc/names.ts");
    for (const m of ["fs.list", "fs.read", "system.logs"] as const) expect(READ_ONLY_METHODS.has(m)).toBe(true);
  });
});

describe("system.logs", () => {
  test("tail: the newest lines, parsed, with level names", async () => {
    // each connection logs a line ("connection opened", debug)
    for (let i = 0; i < 6; i++) (await k.connect()).client.close();
    for (let i = 0; i < 100; i++) {
      if ((await k.client.call<any>("system.logs", { tail: 10_000 })).lines.length > 5) break;
      await Bun.sleep(20);
    }
    const r = await k.client.call<any>("system.logs", { tail: 5 });
    expect(r.truncated).toBe(true);
    expect(r.lines.length).toBe(5);
    for (const l of r.lines) {
      expect(typeof l.msg).toBe("string");
      expect(["trace", "debug", "info", "warn", "error", "fatal"]).toContain(l.level);
      expect(Number.isNaN(Date.parse(l.time))).toBe(false);
    }
    const all = await k.client.call<any>("system.logs", { tail: 10_000 });
    expect(all.truncated).toBe(false);
    expect(all.lines.some((l: any) => l.msg === "aaos kernel ready")).toBe(true);
    // the tail is the end of the whole
    expect(all.lines.slice(-5).map((l: any) => l.time)).toEqual(r.lines.map((l: any) => l.time));
    await rpcError(k.client.call("system.logs", { tail: 10_001 }), -32602);
  });

  test("since: only lines at or after it", async () => {
    const everything = await k.client.call<any>("system.logs", { tail: 10_000, since: "1h" });
    expect(everything.lines.some((l: any) => l.msg === "aaos kernel ready")).toBe(true);
    const cut = new Date(Date.now() + 60_000).toISOString();
    expect((await k.client.call<any>("system.logs", { since: cut })).lines).toEqual([]);
    await rpcError(k.client.call("system.logs", { since: "yesterday-ish" }), -32602);
  });

  test("follow: new lines arrive as system.log notifications until the connection closes", async () => {
    const { client } = await k.connect();
    const got: any[] = [];
    client.onNotification((n) => {
      if (n.method === "system.log") got.push(n.params);
    });
    const r = await client.call<any>("system.logs", { tail: 0, follow: true });
    expect(r.lines).toEqual([]);
    expect(r.following).toBe(true);
    // a new connection is logged ("connection opened", debug)
    const other = await k.connect();
    for (let i = 0; i < 100 && !got.some((p) => p.line.msg === "connection opened"); i++) await Bun.sleep(50);
    expect(got.some((p) => p.source === "kernel" && p.line.msg === "connection opened")).toBe(true);
    other.client.close();
    client.close();
  });

  test("a source without a file: init in host mode; the kernel logging to stderr", async () => {
    const e = await rpcError(k.client.call("system.logs", { source: "init" }), -32601);
    expect(e.message).toContain("host mode has no init");

    // a kernel started without --log-file logs to stderr
    const dir = mkdtempSync(join(tmpdir(), "aaos-ops-"));
    mkdirSync(join(dir, "config", "manifests"), { recursive: true });
    const socket = join(dir, "k.sock");
    const proc = Bun.spawn(
      [
        process.execPath,
        resolve(import.meta.dir, "../../kernel/main.ts"),
        "--config",
        join(dir, "config"),
        "--data",
        join(dir, "data"),
        "--listen",
        `unix:${socket}`,
      ],
      { stdout: "ignore", stderr: "ignore" },
    );
    try {
      let c: RpcClient | null = null;
      for (let i = 0; i < 400 && !c; i++) {
        c = await RpcClient.unix(socket).catch(() => null);
        if (!c) await Bun.sleep(25);
      }
      const e2 = await rpcError(c!.call("system.logs", {}), -32601);
      expect(e2.message).toBe(
        "the kernel logs to stderr in this mode; give --log-file (or kernel.yaml log.file) to read it here",
      );
      c!.close();
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
