// Kernel-private state and hard links, through the file tools on real files:
// whatever a grant says, no tool reads, writes or lists the kernel's own
// state, and no write or read reaches an inode outside the grant through a
// hard link.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  chmodSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrivateAreas } from "../../../kernel/caps/index.ts";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { HARD_LINK_REASON, setOpenat2Disabled } from "../../../kernel/sys/openat2.ts";
import fileList from "../../../kernel/tools/file_list.ts";
import fileRead from "../../../kernel/tools/file_read.ts";
import fileWrite, { TEMP_PREFIX } from "../../../kernel/tools/file_write.ts";
import { makeCtx, rejection } from "./tool-context.ts";

let dir: string;
let data: string;
let config: string;
let keyFile: string;
let areas: PrivateAreas;
let outside: string; // a directory no grant covers

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-private-tools-"));
  data = join(dir, "data");
  config = join(dir, "config");
  outside = join(dir, "outside");
  keyFile = join(config, "keys", "openai.key");
  for (const d of [
    join(data, "audit"),
    join(data, "approvals"),
    join(data, "files", "work"),
    join(config, "secrets"),
    join(config, "keys"),
    join(config, "manifests"),
    outside,
  ])
    mkdirSync(d, { recursive: true });
  writeFileSync(join(data, "audit", "000001.seg"), "SEGMENT");
  writeFileSync(join(data, "approvals", "pending.json"), "{}");
  writeFileSync(join(config, "secrets", "anthropic_api_key"), "sk-ant-SECRET");
  writeFileSync(keyFile, "sk-openai-SECRET");
  writeFileSync(join(config, "kernel.yaml"), "inference: {}\n");
  writeFileSync(join(dir, "kernel.log"), "log");
  areas = new PrivateAreas({
    dataDir: data,
    configDir: config,
    keyFiles: [keyFile],
    logFiles: [join(dir, "kernel.log")],
  });
});
afterAll(() => {
  setOpenat2Disabled(false);
  rmSync(dir, { recursive: true, force: true });
});

const denied = (e: unknown) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.CapabilityDenied);
  return e as KernelError;
};

for (const mode of ["openat2", "fallback walk"] as const) {
  describe(mode, () => {
    beforeAll(() => setOpenat2Disabled(mode === "fallback walk"));
    afterAll(() => setOpenat2Disabled(false));
    const broad = () =>
      makeCtx(
        [
          `file_write: ${data}/*`,
          `file_read: ${data}/*`,
          `file_read: ${config}/*`,
          `file_write: ${config}/*`,
          `file_read: ${dir}/*`,
        ],
        { privateAreas: areas },
      );

    test("an audit segment cannot be overwritten, appended to or read under file_write/file_read: <data>/*", async () => {
      const ctx = broad();
      const seg = join(data, "audit", "000001.seg");
      for (const append of [false, true]) {
        const e = denied(await rejection(fileWrite.run(ctx, { path: seg, content: "forged", append })));
        expect(e.data!.reason).toMatch(/kernel-private state/);
      }
      denied(await rejection(fileRead.run(ctx, { path: seg })));
      denied(await rejection(fileList.run(ctx, { path: join(data, "audit") })));
      // `..` out of files/ into the audit log is the same path
      denied(await rejection(fileWrite.run(ctx, { path: `${data}/files/../audit/000002.seg`, content: "x" })));
      // a new store under the data directory is private too
      denied(await rejection(fileWrite.run(ctx, { path: `${data}/newstore/x`, content: "x" })));
      expect(readFileSync(seg, "utf8")).toBe("SEGMENT");
      expect(readdirSync(join(data, "audit"))).toEqual(["000001.seg"]);
      expect(existsSync(join(data, "newstore"))).toBe(false);
      expect(ctx.denied.every((d) => /kernel-private/.test(d.reason))).toBe(true);
    });

    test("secrets, key files and log files cannot be read under file_read: <config>/*", async () => {
      const ctx = broad();
      for (const path of [join(config, "secrets", "anthropic_api_key"), keyFile, join(dir, "kernel.log")]) {
        const e = denied(await rejection(fileRead.run(ctx, { path })));
        expect(e.message).not.toMatch(/SECRET/);
      }
      denied(await rejection(fileList.run(ctx, { path: join(config, "secrets") })));
      denied(
        await rejection(fileWrite.run(ctx, { path: join(config, "secrets", "anthropic_api_key"), content: "mine" })),
      );
      expect(readFileSync(join(config, "secrets", "anthropic_api_key"), "utf8")).toBe("sk-ant-SECRET");
      // the rest of the config may be read
      expect(((await fileRead.run(ctx, { path: join(config, "kernel.yaml") })) as any).content).toBe("inference: {}\n");
    });

    test("listings leave private entries out", async () => {
      const ctx = broad();
      const d = (await fileList.run(ctx, { path: data })) as any;
      expect(d.entries.map((e: any) => e.name)).toEqual(["files"]);
      const c = (await fileList.run(ctx, { path: config })) as any;
      expect(c.entries.map((e: any) => e.name)).toEqual(["kernel.yaml", "keys", "manifests"]);
      const k = (await fileList.run(ctx, { path: join(config, "keys") })) as any;
      expect(k.entries).toEqual([]);
      const top = (await fileList.run(ctx, { path: dir })) as any;
      expect(top.entries.map((e: any) => e.name)).toEqual(["config", "data", "outside"]);
    });

    test("the agents' area works", async () => {
      const ctx = broad();
      const path = join(data, "files", mode, "report.md");
      await fileWrite.run(ctx, { path, content: "# report" });
      await fileWrite.run(ctx, { path, content: "\nmore", append: true });
      expect(((await fileRead.run(ctx, { path })) as any).content).toBe("# report\nmore");
      await fileWrite.run(ctx, { path, content: "replaced" });
      expect(readFileSync(path, "utf8")).toBe("replaced");
      expect(readdirSync(join(data, "files", mode))).toEqual(["report.md"]); // no temp file left
      // writing over the area itself: it is a directory, and nothing is built in <data>
      const e = await rejection(fileWrite.run(ctx, { path: join(data, "files"), content: "x" }));
      expect(e.code).toBe(ErrorCode.InvalidParams);
      expect(readdirSync(data).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
    });

    test("file_write replacing a hard-linked file replaces this name only: the outside file keeps its content", async () => {
      const target = join(outside, `victim-${mode.length}.txt`);
      writeFileSync(target, "outside content");
      const link = join(data, "files", "work", `link-${mode.length}.txt`);
      linkSync(target, link);
      expect(statSync(link).nlink).toBe(2);
      const ctx = makeCtx([`file_write: ${data}/files/*`], { privateAreas: areas });
      const r = (await fileWrite.run(ctx, { path: link, content: "agent content" })) as any;
      expect(r).toMatchObject({ path: link, bytes: 13 });
      expect(readFileSync(target, "utf8")).toBe("outside content");
      expect(readFileSync(link, "utf8")).toBe("agent content");
      expect(statSync(link).nlink).toBe(1);
      expect(statSync(target).nlink).toBe(1);
      expect(statSync(link).ino).not.toBe(statSync(target).ino);
      expect(readdirSync(join(data, "files", "work")).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
    });

    test("append to a file with two hard links is refused, and nothing is written", async () => {
      const target = join(outside, `append-${mode.length}.txt`);
      writeFileSync(target, "outside content");
      const link = join(data, "files", "work", `alink-${mode.length}.txt`);
      linkSync(target, link);
      const ctx = makeCtx([`file_write: ${data}/files/*`], { privateAreas: areas });
      const e = denied(await rejection(fileWrite.run(ctx, { path: link, content: "appended", append: true })));
      expect(e.message).toBe(`capability denied: ${link} has 2 hard links; ${HARD_LINK_REASON}`);
      expect(e.data).toMatchObject({
        tool: "file_write",
        capability: `file_write: ${link}`,
        reason: HARD_LINK_REASON,
        path: link,
        nlink: 2,
      });
      expect(readFileSync(target, "utf8")).toBe("outside content");
    });

    test("reading a file with two hard links is refused", async () => {
      const target = join(outside, `read-${mode.length}.txt`);
      writeFileSync(target, "outside secret");
      const link = join(data, "files", "work", `rlink-${mode.length}.txt`);
      linkSync(target, link);
      const ctx = makeCtx([`file_read: ${data}/files/*`], { privateAreas: areas });
      const e = denied(await rejection(fileRead.run(ctx, { path: link })));
      expect(e.message).toMatch(
        /has 2 hard links; a file with more than one hard link is refused, because the other name may lie outside the grant/,
      );
      expect(e.message).not.toMatch(/outside secret/);
      // listing still shows it (a name is not its content)
      const l = (await fileList.run(ctx, { path: join(data, "files", "work") })) as any;
      expect(l.entries.map((x: any) => x.name)).toContain(`rlink-${mode.length}.txt`);
    });

    test("a replacing write keeps the file's permission bits", async () => {
      const path = join(data, "files", "work", `mode-${mode.length}.sh`);
      writeFileSync(path, "old");
      chmodSync(path, 0o640);
      const ctx = makeCtx([`file_write: ${data}/files/*`], { privateAreas: areas });
      await fileWrite.run(ctx, { path, content: "new" });
      expect(statSync(path).mode & 0o777).toBe(0o640);
      expect(readFileSync(path, "utf8")).toBe("new");
    });

    test("an exact grant replaces only its file and leaves no temp file beside it", async () => {
      const path = join(data, "files", "work", `exact-${mode.length}.txt`);
      writeFileSync(path, "old");
      const ctx = makeCtx([`file_write: ${path}`], { privateAreas: areas });
      await fileWrite.run(ctx, { path, content: "new" });
      expect(readFileSync(path, "utf8")).toBe("new");
      expect(readdirSync(join(data, "files", "work")).filter((n) => n.startsWith(TEMP_PREFIX))).toEqual([]);
    });
  });
}
