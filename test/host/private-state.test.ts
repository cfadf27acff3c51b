// Issue 9, "the kernel protects its own state", through a real kernel on a
// real unix socket: an agent granted the whole data and config directories
// still cannot overwrite the audit log, read the API key or a key file, or
// see the kernel's stores in a listing. Its own area, <data>/files, works.
// Every refusal is -32001 with a capability.denied record, and the audit
// chain stays intact.
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, rpcError, startKernel, type RunningKernel } from "./harness.ts";

let k: RunningKernel;
let agent: string;
let keyFile: string;
const API_KEY = "sk-ant-private-state-test-key";
const OTHER_KEY = "sk-other-private-state-test-key";

beforeAll(async () => {
  // the files kernel.yaml names exist before the kernel boots
  const dir = mkdtempSync(join(tmpdir(), "aaos-private-"));
  mkdirSync(join(dir, "config", "secrets"), { recursive: true });
  writeFileSync(join(dir, "config", "secrets", "anthropic_api_key"), API_KEY + "\n");
  mkdirSync(join(dir, "config", "keys"), { recursive: true });
  keyFile = join(dir, "config", "keys", "local.key");
  writeFileSync(keyFile, OTHER_KEY + "\n");
  k = await startKernel({
    dir,
    kernelYaml: [
      "inference:",
      "  providers:",
      "    anthropic:",
      "      api_key_file: secrets/anthropic_api_key",
      "    openai_compatible:",
      "      - name: local",
      "        base_url: http://127.0.0.1:9/v1",
      "        api_key_file: keys/local.key",
      "        models: [local-model]",
      "",
    ].join("\n"),
  });
  const s = await k.client.call("agent.spawn", {
    manifest: [
      "name: grabber",
      "model: claude-haiku-4-5-20251001",
      "capabilities:",
      `  - "file_write: ${k.dataDir}/*"`,
      `  - "file_read: ${k.dataDir}/*"`,
      `  - "file_read: ${k.configDir}/*"`,
      "",
    ].join("\n"),
  });
  agent = s.agent_id;
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
});

const invoke = (tool: string, input: object) => k.client.call("tool.invoke", { agent_id: agent, tool, input });

async function deniedAndAudited(p: Promise<unknown>, capability: string) {
  const e = await rpcError(p, -32001);
  expect(e.data?.reason).toMatch(/kernel-private state/);
  expect(JSON.stringify(e)).not.toContain(API_KEY);
  expect(JSON.stringify(e)).not.toContain(OTHER_KEY);
  const q = await k.client.call("audit.query", { agent_id: agent, kind: "capability.denied", limit: 1000 });
  const rec = q.events.find((r: any) => r.capability === capability);
  expect(rec).toBeDefined();
  expect(rec.reason).toMatch(/kernel-private state/);
  return e;
}

test("the audit log cannot be overwritten or appended to", async () => {
  const segs = readdirSync(join(k.dataDir, "audit"))
    .filter((f) => f.endsWith(".jsonl"))
    .sort();
  expect(segs.length).toBeGreaterThan(0);
  const seg = join(k.dataDir, "audit", segs[0]!);
  const before = readFileSync(seg);
  await deniedAndAudited(invoke("file_write", { path: seg, content: "forged\n" }), `file_write: ${seg}`);
  await deniedAndAudited(invoke("file_write", { path: seg, content: "forged\n", append: true }), `file_write: ${seg}`);
  // through `..` from the agents' area: the same path
  await rpcError(invoke("file_write", { path: `${k.dataDir}/files/../audit/${segs[0]}`, content: "forged\n" }), -32001);
  expect(readFileSync(seg).subarray(0, before.length).equals(before)).toBe(true);
  expect(
    readdirSync(join(k.dataDir, "audit"))
      .filter((f) => f.endsWith(".jsonl"))
      .sort(),
  ).toEqual(segs);
});

test("the API key in secrets/ cannot be read", async () => {
  const path = join(k.configDir, "secrets", "anthropic_api_key");
  await deniedAndAudited(invoke("file_read", { path }), `file_read: ${path}`);
  await deniedAndAudited(
    invoke("file_list", { path: join(k.configDir, "secrets") }),
    `file_read: ${join(k.configDir, "secrets")}`,
  );
});

test("a key file kernel.yaml names cannot be read", async () => {
  await deniedAndAudited(invoke("file_read", { path: keyFile }), `file_read: ${keyFile}`);
});

test("listings show neither the kernel's stores nor the secrets", async () => {
  const d = await invoke("file_list", { path: k.dataDir });
  expect(d.output.entries.map((e: any) => e.name)).toEqual(existsSync(join(k.dataDir, "files")) ? ["files"] : []);
  const c = await invoke("file_list", { path: k.configDir });
  const names = c.output.entries.map((e: any) => e.name);
  expect(names).toContain("kernel.yaml");
  expect(names).not.toContain("secrets");
  const keys = await invoke("file_list", { path: join(k.configDir, "keys") });
  expect(keys.output.entries).toEqual([]);
});

test("the agents' own area works: <data>/files", async () => {
  const path = join(k.dataDir, "files", "reports", "r.md");
  const w = await invoke("file_write", { path, content: "# report" });
  expect(w.output).toMatchObject({ path, bytes: 8 });
  expect(readFileSync(path, "utf8")).toBe("# report");
  const r = await invoke("file_read", { path });
  expect(r.output.content).toBe("# report");
  const d = await invoke("file_list", { path: k.dataDir });
  expect(d.output.entries.map((e: any) => e.name)).toEqual(["files"]);
});

test("a hard link in the agents' area to a file outside it: not read, not appended to, replaced without touching it", async () => {
  const outside = join(k.dir, "outside.txt");
  writeFileSync(outside, "outside content");
  mkdirSync(join(k.dataDir, "files"), { recursive: true });
  const link = join(k.dataDir, "files", "link.txt");
  linkSync(outside, link);
  const r = await rpcError(invoke("file_read", { path: link }), -32001);
  expect(r.message).toContain(`${link} has 2 hard links`);
  expect(r.message).not.toContain("outside content");
  await rpcError(invoke("file_write", { path: link, content: "appended", append: true }), -32001);
  expect(readFileSync(outside, "utf8")).toBe("outside content");
  await invoke("file_write", { path: link, content: "agent content" });
  expect(readFileSync(outside, "utf8")).toBe("outside content");
  expect(readFileSync(link, "utf8")).toBe("agent content");
  expect(statSync(link).nlink).toBe(1);
});

test("the audit chain is intact after all of it", async () => {
  const v = await k.client.call("audit.verify", {});
  expect(v.ok).toBe(true);
  // the non-private config may still be read
  const y = await invoke("file_read", { path: join(k.configDir, "kernel.yaml") });
  expect(y.output.content).toContain("api_key_file");
});
