// file_delete on real files in a temp dir: a file or an empty directory goes,
// journaled first (pre-image and its bytes, post absent); every refusal
// leaves the tree as it was and nothing journaled.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrivateAreas } from "../../../kernel/caps/index.ts";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { HARD_LINK_REASON, setOpenat2Disabled } from "../../../kernel/sys/openat2.ts";
import fileDelete from "../../../kernel/tools/file_delete.ts";
import { makeCtx, rejection } from "./tool-context.ts";

let dir: string;
let w: string; // the granted tree
let secret: string;

const sha = (b: string | Uint8Array) => createHash("sha256").update(b).digest("hex");
const modeOf = (p: string) => statSync(p).mode & 0o7777;
const denied = (e: unknown) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.CapabilityDenied);
  return e as KernelError;
};
const invalid = (e: unknown, re: RegExp) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.InvalidParams);
  expect((e as KernelError).message).toMatch(re);
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-delete-"));
  w = join(dir, "w");
  secret = join(dir, "secret");
  mkdirSync(w);
  mkdirSync(secret);
  writeFileSync(join(secret, "key"), "TOP SECRET");
});
afterAll(() => {
  setOpenat2Disabled(false);
  rmSync(dir, { recursive: true, force: true });
});

for (const mode of ["openat2", "fallback walk"] as const) {
  describe(mode, () => {
    beforeAll(() => setOpenat2Disabled(mode === "fallback walk"));
    afterAll(() => setOpenat2Disabled(false));
    const m = mode.length;
    const grant = () => makeCtx([`file_write: ${w}/*`]);

    test("a file: journaled with its bytes before it goes", async () => {
      const p = join(w, `f-${m}.txt`);
      writeFileSync(p, "old bytes ✓", { mode: 0o640 });
      const fmode = modeOf(p);
      const bytes = readFileSync(p);
      const ctx = grant();
      const out = (await fileDelete.run(ctx, { path: p })) as any;
      expect(existsSync(p)).toBe(false);
      expect(ctx.journaled as unknown).toEqual([
        {
          changes: [
            {
              path: p,
              pre: { kind: "file", sha256: sha(bytes), size: bytes.length, mode: fmode },
              preContent: expect.any(Uint8Array),
              post: { kind: "absent" },
            },
          ],
          settled: "done",
        },
      ]);
      expect(Buffer.from(ctx.journaled[0]!.changes[0]!.preContent!).equals(bytes)).toBe(true);
      expect(out).toEqual({
        path: p,
        deleted: "file",
        changes: [{ path: p, pre: { kind: "file", sha256: sha(bytes) }, post: { kind: "absent" } }],
      });
    });

    test("an empty directory", async () => {
      const p = join(w, `empty-${m}`);
      mkdirSync(p, { mode: 0o750 });
      const dmode = modeOf(p);
      const ctx = grant();
      const out = (await fileDelete.run(ctx, { path: `${p}/` })) as any;
      expect(existsSync(p)).toBe(false);
      expect(ctx.journaled as unknown).toEqual([
        {
          changes: [{ path: p, pre: { kind: "dir", mode: dmode }, preContent: null, post: { kind: "absent" } }],
          settled: "done",
        },
      ]);
      expect(out).toEqual({
        path: p,
        deleted: "dir",
        changes: [{ path: p, pre: { kind: "dir" }, post: { kind: "absent" } }],
      });
    });

    test("a non-empty directory, a missing path, the grant's root: refused, nothing journaled", async () => {
      const p = join(w, `full-${m}`);
      mkdirSync(p);
      writeFileSync(join(p, "x"), "x");
      const ctx = grant();
      invalid(await rejection(fileDelete.run(ctx, { path: p })), /is not empty/);
      expect(readFileSync(join(p, "x"), "utf8")).toBe("x");
      invalid(await rejection(fileDelete.run(ctx, { path: join(w, `missing-${m}`) })), /does not exist/);
      invalid(await rejection(fileDelete.run(ctx, { path: join(w, `nodir-${m}`, "f") })), /no such file/);
      invalid(await rejection(fileDelete.run(ctx, { path: w })), /cannot delete the root of the grant/);
      expect(existsSync(w)).toBe(true);
      expect(ctx.journaled).toEqual([]);
    });

    test("a denied path is audited and untouched", async () => {
      const ctx = grant();
      denied(await rejection(fileDelete.run(ctx, { path: join(secret, "key") })));
      denied(await rejection(fileDelete.run(ctx, { path: `${w}/../secret/key` })));
      expect(ctx.denied.map((d) => d.kind)).toEqual(["file_write", "file_write"]);
      const ro = makeCtx([`file_read: ${w}/*`]);
      writeFileSync(join(w, `ro-${m}`), "r");
      denied(await rejection(fileDelete.run(ro, { path: join(w, `ro-${m}`) })));
      expect(ro.denied.length).toBe(1);
      expect(existsSync(join(w, `ro-${m}`))).toBe(true);
      expect(readFileSync(join(secret, "key"), "utf8")).toBe("TOP SECRET");
      expect(ctx.journaled).toEqual([]);
    });

    test("a symlink as the target, or in a parent component: refused", async () => {
      const link = join(w, `link-${m}`);
      symlinkSync(join(secret, "key"), link);
      const ctx = grant();
      const e = denied(await rejection(fileDelete.run(ctx, { path: link })));
      expect(e.data).toMatchObject({ reason: "symlink or escape refused", tool: "file_delete" });
      expect(statSync(link, { throwIfNoEntry: false })).toBeDefined();
      const dl = join(w, `dirlink-${m}`);
      symlinkSync(secret, dl);
      denied(await rejection(fileDelete.run(ctx, { path: `${dl}/key` })));
      expect(readFileSync(join(secret, "key"), "utf8")).toBe("TOP SECRET");
      expect(ctx.journaled).toEqual([]);
    });

    test("a file with two hard links: refused", async () => {
      const outside = join(secret, `outside-${m}`);
      writeFileSync(outside, "outside");
      const link = join(w, `hard-${m}`);
      linkSync(outside, link);
      const ctx = grant();
      const e = denied(await rejection(fileDelete.run(ctx, { path: link })));
      expect(e.message).toContain(HARD_LINK_REASON);
      expect(e.data).toMatchObject({ path: link, nlink: 2 });
      expect(existsSync(link) && existsSync(outside)).toBe(true);
      expect(ctx.journaled).toEqual([]);
    });

    test("kernel-private state, the agents' area itself and a directory holding private state: refused", async () => {
      const data = join(dir, `kdata-${m}`);
      const config = join(dir, `kconfig-${m}`);
      mkdirSync(join(data, "audit"), { recursive: true });
      mkdirSync(join(data, "files"), { recursive: true });
      mkdirSync(join(config, "secrets"), { recursive: true });
      writeFileSync(join(data, "audit", "000001.seg"), "SEG");
      const areas = new PrivateAreas({ dataDir: data, configDir: config });
      const ctx = makeCtx([`file_write: ${dir}/*`], { privateAreas: areas });
      denied(await rejection(fileDelete.run(ctx, { path: join(data, "audit", "000001.seg") })));
      expect(ctx.denied[0]!.reason).toMatch(/kernel-private/);
      invalid(await rejection(fileDelete.run(ctx, { path: join(data, "files") })), /agents' own area/);
      invalid(await rejection(fileDelete.run(ctx, { path: config })), /kernel-private/);
      invalid(await rejection(fileDelete.run(ctx, { path: data })), /agents' own area|kernel-private/);
      expect(existsSync(join(data, "files")) && existsSync(join(config, "secrets"))).toBe(true);
      expect(ctx.journaled).toEqual([]);
    });

    test("an error after begin, before the change: the journal entry is settled failed", async () => {
      const p = join(w, `race-${m}.txt`);
      writeFileSync(p, "x");
      const ctx = makeCtx([`file_write: ${w}/*`], { onBegin: () => rmSync(p) });
      invalid(await rejection(fileDelete.run(ctx, { path: p })), /no such file/);
      expect(ctx.journaled.length).toBe(1);
      expect(ctx.journaled[0]!.settled).toBe("failed");
    });
  });
}
