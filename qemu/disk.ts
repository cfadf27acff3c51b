// Disk images for tests: a copy of the appliance with another config
// partition, and a look inside the data partition from the host afterwards
// (GPT parsed here, ext4 read with debugfs: no loop devices, no root).
import {
  closeSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT } from "./harness.ts";

export const OUT = process.env.AAOS_OUT ?? join(ROOT, "out");

/** temporary directories made here (disk copies, extracted partitions): removed by cleanupDisks() */
const made: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}
export function cleanupDisks(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The pieces `make image` builds; tests need all of them. */
export function imageArtifacts() {
  const a = { bzImage: join(OUT, "bzImage"), sys: join(OUT, "sys.erofs"), image: join(OUT, "aaos.img") };
  const missing = Object.values(a).filter((p) => !existsSync(p));
  return { ...a, missing };
}

export interface DiskOptions {
  /** where the image goes (default: a temporary directory's aaos.img) */
  out?: string;
  /** a config directory copied first; configFiles are written over it */
  base?: string;
  /** the system's version (mkdisk --version) */
  version?: string;
  /** the data partition's size; null: mkdisk's default (default 64) */
  dataMb?: number | null;
}

/** A fresh GPT disk: the built boot and system partitions, a config partition with these files, an empty data partition. */
export function makeDisk(configFiles: Record<string, string>, opts: DiskOptions = {}): string {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  const dir = tempDir("aaos-disk-");
  const cfg = join(dir, "config");
  if (opts.base) cpSync(opts.base, cfg, { recursive: true });
  for (const [rel, text] of Object.entries(configFiles)) {
    mkdirSync(dirname(join(cfg, rel)), { recursive: true });
    writeFileSync(join(cfg, rel), text);
  }
  mkdirSync(cfg, { recursive: true });
  const out = opts.out ?? join(dir, "aaos.img");
  const dataMb = opts.dataMb === undefined ? 64 : opts.dataMb;
  const r = Bun.spawnSync(
    [
      join(ROOT, "image/mkdisk.sh"),
      "--bzimage",
      a.bzImage,
      "--sys",
      a.sys,
      "--config",
      cfg,
      "--out",
      out,
      ...(dataMb === null ? [] : ["--data-mb", String(dataMb)]),
      ...(opts.version === undefined ? [] : ["--version", opts.version]),
    ],
    { stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`mkdisk failed: ${r.stderr.toString()}`);
  return out;
}

export interface GptPartition {
  name: string;
  firstLba: number;
  lastLba: number;
}

export function gptPartitions(image: string): GptPartition[] {
  const fd = openSync(image, "r");
  try {
    const hdr = Buffer.alloc(512);
    readSync(fd, hdr, 0, 512, 512);
    if (hdr.toString("latin1", 0, 8) !== "EFI PART") throw new Error(`${image}: no GPT`);
    const entriesLba = Number(hdr.readBigUInt64LE(72));
    const count = hdr.readUInt32LE(80);
    const size = hdr.readUInt32LE(84);
    const table = Buffer.alloc(count * size);
    readSync(fd, table, 0, table.length, entriesLba * 512);
    const out: GptPartition[] = [];
    for (let i = 0; i < count; i++) {
      const e = table.subarray(i * size, (i + 1) * size);
      if (e.subarray(0, 16).every((b) => b === 0)) continue;
      out.push({
        name: e.toString("utf16le", 56, 128).replace(/\0.*$/s, ""),
        firstLba: Number(e.readBigUInt64LE(32)),
        lastLba: Number(e.readBigUInt64LE(40)),
      });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** Copy one partition out of the disk image into a file of its own. */
export function extractPartition(image: string, name: string, out: string): string {
  const p = gptPartitions(image).find((x) => x.name === name);
  if (!p) throw new Error(`${image}: no partition ${name}`);
  const r = Bun.spawnSync([
    "dd",
    `if=${image}`,
    `of=${out}`,
    "bs=512",
    `skip=${p.firstLba}`,
    `count=${p.lastLba - p.firstLba + 1}`,
    "status=none",
    "conv=sparse",
  ]);
  if (r.exitCode !== 0) throw new Error(`dd failed: ${r.stderr.toString()}`);
  return out;
}

/** A file on AAOS-DATA (path relative to /data), or null if it is not there. */
export function readDataFile(image: string, path: string): string | null {
  const part = extractPartition(image, "AAOS-DATA", join(tempDir("aaos-data-"), "data.ext4"));
  const r = Bun.spawnSync(["debugfs", "-R", `cat /${path.replace(/^\/+/, "")}`, part], { stderr: "pipe" });
  const err = r.stderr.toString();
  if (r.exitCode !== 0 || /File not found|not found by ext2_lookup/.test(err)) return null;
  return r.stdout.toString();
}

/** After a poweroff: was AAOS-DATA unmounted cleanly, and does e2fsck find nothing? */
export function checkDataFs(image: string): {
  clean: boolean;
  needsRecovery: boolean;
  fsckOk: boolean;
  report: string;
} {
  const part = extractPartition(image, "AAOS-DATA", join(tempDir("aaos-fsck-"), "data.ext4"));
  const hdr = Bun.spawnSync(["dumpe2fs", "-h", part], { stderr: "pipe" }).stdout.toString();
  const fsck = Bun.spawnSync(["e2fsck", "-fn", part], { stdout: "pipe", stderr: "pipe" });
  return {
    clean: /^Filesystem state:\s+clean\s*$/m.test(hdr),
    needsRecovery: /needs_recovery/.test(hdr),
    fsckOk: fsck.exitCode === 0,
    report: fsck.stdout.toString() + fsck.stderr.toString(),
  };
}
