import { afterEach } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function tempDir(): { dir: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "aaos-audit-"));
  return { dir: join(root, "audit"), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** a factory of audit directories, each removed after the test that made it */
export function tempDirsPerTest(): () => string {
  let cleanups: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanups) c();
    cleanups = [];
  });
  return () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };
}
