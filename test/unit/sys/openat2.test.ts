// kernel/sys/openat2.ts directly: openBeneath refuses symlinks (anywhere),
// `..` and absolute paths, with openat2 and with the fallback walk.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import * as S from "../../../kernel/sys/openat2.ts";

const dir = mkdtempSync(join(tmpdir(), "aaos-openat2-"));
mkdirSync(join(dir, "a", "b"), { recursive: true });
writeFileSync(join(dir, "a", "b", "f.txt"), "hello");
symlinkSync("/etc", join(dir, "a", "etc"));
symlinkSync("b/f.txt", join(dir, "a", "rel-link"));
afterAll(() => {
  S.setOpenat2Disabled(false);
  rmSync(dir, { recursive: true, force: true });
});

for (const fallback of [false, true]) {
  describe(fallback ? "fallback walk" : "openat2", () => {
    test("opens and reads beneath the root", () => {
      S.setOpenat2Disabled(fallback);
      const fd = S.openBeneath(dir, "a/b/f.txt", S.O_RDONLY);
      try {
        expect(S.fstat(fd)).toMatchObject({ type: "file", size: 5 });
        expect(new TextDecoder().decode(S.readUpTo(fd, 100).data)).toBe("hello");
      } finally {
        S.close(fd);
      }
    });

    test.each(["a/etc/passwd", "a/etc", "a/rel-link", "a/../../x", "../x"])(
      "refuses %p as symlink or escape",
      (rel) => {
        S.setOpenat2Disabled(fallback);
        let err: unknown;
        try {
          S.close(S.openBeneath(dir, rel, S.O_RDONLY, 0, { tool: "t", capability: "c" }));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(KernelError);
        expect((err as KernelError).code).toBe(ErrorCode.CapabilityDenied);
        expect((err as KernelError).data).toMatchObject({
          tool: "t",
          capability: "c",
          reason: "symlink or escape refused",
        });
      },
    );

    test("absolute rel paths and NULs are refused", () => {
      S.setOpenat2Disabled(fallback);
      expect(() => S.openBeneath(dir, "/etc/passwd", S.O_RDONLY)).toThrow(KernelError);
      expect(() => S.openBeneath(dir, "a\0b", S.O_RDONLY)).toThrow(/NUL/);
    });

    test("mkdirsBeneath creates component by component, and lists with getdents64", () => {
      S.setOpenat2Disabled(fallback);
      const root = S.openDirNoSymlinks(dir);
      try {
        const sub = fallback ? "m/n/o" : "p/q";
        const { fd, created } = S.mkdirsBeneath(root, sub);
        S.close(fd);
        expect(created).toEqual(sub.split("/"));
        expect(S.mkdirsBeneath(root, sub).created).toEqual([]);
        expect(() => S.mkdirsBeneath(root, "a/etc/new")).toThrow(S.SysError);
        const d = S.openAtBeneath(root, "a", S.O_RDONLY | S.O_DIRECTORY);
        try {
          const names = S.readDirFd(d)
            .entries.map((e) => e.name)
            .sort();
          expect(names).toEqual(["b", "etc", "rel-link"]);
          expect(S.statAt(d, "etc").type).toBe("symlink");
        } finally {
          S.close(d);
        }
      } finally {
        S.close(root);
      }
    });
  });
}
