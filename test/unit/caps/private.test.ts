// PrivateAreas: which paths no tool may touch, whatever a grant says.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrivateAreas } from "../../../kernel/caps/index.ts";

const p = new PrivateAreas({
  dataDir: "/data",
  configDir: "/config",
  keyFiles: ["/etc/aaos/openai.key", "/config/secrets/anthropic_api_key"],
  logFiles: ["/var/log/aaos/kernel.log"],
});

test("filesDir is <dataDir>/files", () => {
  expect(p.filesDir).toBe("/data/files");
});

test.each([
  "/data/audit",
  "/data/audit/000001.seg",
  "/data/approvals/pending.json",
  "/data/logs/kernel.log",
  "/data/agents/ag-1/state.json",
  "/data/some-future-store/x.db",
  "/data/filesx",
  "/data/filesx/a",
  "/data/files-old/a",
  "/data/.aaos-layout.json",
  "/config/secrets",
  "/config/secrets/anthropic_api_key",
  "/config/secrets/deep/er",
  "/etc/aaos/openai.key",
  "/var/log/aaos/kernel.log",
])("%p is private", (path) => {
  const r = p.reason(path);
  expect(r).not.toBeNull();
  expect(r!).toStartWith(`${path} is kernel-private state`);
});

test.each([
  "/",
  "/data",
  "/data/files",
  "/data/files/report.md",
  "/data/files/audit/x",
  "/data-x/audit",
  "/datafiles",
  "/config",
  "/config/kernel.yaml",
  "/config/manifests/assistant.yaml",
  "/config/secretsx",
  "/config/secrets-readme.txt",
  "/etc/aaos",
  "/etc/aaos/openai.key.bak",
  "/var/log/aaos/kernel.log.1",
  "/var/log/aaos",
])("%p may be touched", (path) => {
  expect(p.reason(path)).toBeNull();
});

test("the reasons say what the area is and where agents' files go", () => {
  expect(p.reason("/data/audit/000001.seg")).toBe(
    "/data/audit/000001.seg is kernel-private state (the audit log, approvals, logs and every store under the data directory other than /data/files); agents' files go under /data/files",
  );
  expect(p.reason("/config/secrets/anthropic_api_key")).toMatch(/secrets of the config directory/);
  expect(p.reason("/etc/aaos/openai.key")).toMatch(/a key file named in kernel.yaml/);
  expect(p.reason("/var/log/aaos/kernel.log")).toMatch(/the kernel's log file/);
});

test("hides: a listing of the data directory shows only files", () => {
  const names = ["audit", "approvals", "logs", "agents", "tmp", "output", "files", "filesx", ".aaos-layout.json"];
  expect(names.filter((n) => !p.hides("/data", n))).toEqual(["files"]);
  expect(p.hides("/", "data")).toBe(false);
  expect(p.hides("/config", "secrets")).toBe(true);
  expect(p.hides("/config", "kernel.yaml")).toBe(false);
  expect(p.hides("/config", "manifests")).toBe(false);
  expect(p.hides("/etc/aaos", "openai.key")).toBe(true);
  expect(p.hides("/etc/aaos", "other")).toBe(false);
  expect(p.hides("/var/log/aaos", "kernel.log")).toBe(true);
  expect(p.hides("/data/files", "audit")).toBe(false);
  // names that are not single entries are never shown
  for (const n of ["", ".", "..", "a/b"]) expect(p.hides("/data/files", n)).toBe(true);
});

test("a data directory at / makes everything but /files private", () => {
  const r = new PrivateAreas({ dataDir: "/", configDir: "/nonexistent" });
  expect(r.filesDir).toBe("/files");
  expect(r.reason("/")).toBeNull();
  expect(r.reason("/files/x")).toBeNull();
  expect(r.reason("/etc/passwd")).not.toBeNull();
});

test("trailing slashes and relative spellings of the directories are normalised", () => {
  const r = new PrivateAreas({ dataDir: "/data/", configDir: "/config//" });
  expect(r.filesDir).toBe("/data/files");
  expect(r.reason("/data/audit")).not.toBeNull();
  expect(r.reason("/config/secrets/k")).not.toBeNull();
});

const tmp = mkdtempSync(join(tmpdir(), "aaos-private-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("directories given through a symlink are private under both spellings", () => {
  const real = join(tmp, "real");
  mkdirSync(join(real, "data"), { recursive: true });
  mkdirSync(join(real, "config"), { recursive: true });
  symlinkSync(real, join(tmp, "alias"));
  const r = new PrivateAreas({
    dataDir: join(tmp, "alias", "data"),
    configDir: join(tmp, "alias", "config"),
    keyFiles: [join(tmp, "alias", "key")],
  });
  const realData = realpathSync(join(real, "data"));
  expect(r.filesDir).toBe(join(realData, "files"));
  for (const d of [realData, join(tmp, "alias", "data")]) {
    expect(r.reason(join(d, "audit", "1.seg"))).not.toBeNull();
    expect(r.reason(join(d, "files", "ok.txt"))).toBeNull();
  }
  for (const c of [realpathSync(join(real, "config")), join(tmp, "alias", "config")])
    expect(r.reason(join(c, "secrets", "k"))).not.toBeNull();
  expect(r.reason(join(tmp, "alias", "key"))).not.toBeNull();
});

test("reason is cheap: a million calls well under a second", () => {
  const t = performance.now();
  for (let i = 0; i < 1_000_000; i++) p.reason(i & 1 ? "/data/files/a/b/c.txt" : "/home/user/project/notes.md");
  expect(performance.now() - t).toBeLessThan(1000);
});
