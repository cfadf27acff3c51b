// Whole-file writes of the kernel's own state (manifests on the data disk,
// kernel.yaml, secrets, large journal pre-images): a crash leaves the old
// file or the new one, never a mix; and how each store opens its database.
import { Database } from "bun:sqlite";
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * Writes data to path so that a crash leaves either the old file or the new
 * one, never a mix: a temporary file beside it, fsync, rename over, fsync of
 * the directory.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(dir);
}

/** fsync of a directory by path: what was renamed or removed in it is durable */
export function syncDir(dir: string): void {
  const dfd = openSync(dir, "r");
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/**
 * A kernel store's bun:sqlite database (its directory made first): WAL with
 * synchronous=FULL, so a statement that returned is on disk (the WAL is
 * fsynced at every commit), and a busy timeout for a second connection.
 */
export function openStateDb(file: string): Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { create: true, strict: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA busy_timeout = 5000");
  return db;
}
