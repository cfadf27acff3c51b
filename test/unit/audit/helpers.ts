import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function tempDir(): { dir: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "aaos-audit-"));
  return { dir: join(root, "audit"), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
