// The GPT grow of init/gpt.ts on real disk image files: a table written by
// sfdisk (util-linux), the file enlarged with truncate as a VM's disk is, the
// grow run on the file, and sfdisk as the independent judge: --verify finds
// no error, AAOS-DATA ends at the disk's last usable LBA, and the backup
// table alone (the primary wiped) still reads as the grown one.
import { afterAll, expect, test } from "bun:test";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32, GptError, lastPartition, planGrow, readGpt, writeGrow } from "../../../init/gpt.ts";
import { DATA_LABEL } from "../../../init/index.ts";

const dir = mkdtempSync(join(tmpdir(), "aaos-gpt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1 << 20;
/** what the enlarged disk gets, as a VM's disk does */
const ADDED_MiB = 64;

function sh(argv: string[], stdin?: string) {
  const r = Bun.spawnSync(argv, { stdin: stdin === undefined ? "ignore" : Buffer.from(stdin), stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

/**
 * A disk image of sizeMiB with the given sfdisk script lines, by util-linux
 * itself: sfdisk for 512-byte sectors; fdisk -b 4096 (its I command loads an
 * sfdisk script) for 4 KiB ones, which sfdisk 2.38 cannot be told about.
 */
function makeImage(name: string, sizeMiB: number, lines: string[], sectorSize = 512): string {
  const path = join(dir, name);
  writeFileSync(path, "");
  truncateSync(path, sizeMiB * MiB);
  const script = ["label: gpt", ...lines].join("\n") + "\n";
  const r =
    sectorSize === 512
      ? sh(["sfdisk", "-q", path], script)
      : (writeFileSync(path + ".script", script),
        sh(["fdisk", "-b", String(sectorSize), path], `I\n${path}.script\nw\n`));
  if (r.code !== 0) throw new Error(`partitioning ${name}: ${r.err}`);
  return path;
}

function sfdiskJson(path: string) {
  const r = sh(["sfdisk", "-J", path]);
  if (r.code !== 0) throw new Error(`sfdisk -J: ${r.err}`);
  return { table: JSON.parse(r.out).partitiontable, warnings: r.err };
}

/** the table as fdisk -b 4096 reads it (its O command dumps an sfdisk script) */
function fdiskDump(
  path: string,
  sectorSize: number,
): { lastLba: number; parts: Record<string, { start: number; size: number }> } {
  const out = path + ".dump";
  rmSync(out, { force: true });
  sh(["fdisk", "-b", String(sectorSize), path], `O\n${out}\nq\n`);
  const text = readFileSync(out, "utf8");
  const parts: Record<string, { start: number; size: number }> = {};
  for (const m of text.matchAll(/start=\s*(\d+), size=\s*(\d+),.*name="([^"]*)"/g))
    parts[m[3]!] = { start: Number(m[1]), size: Number(m[2]) };
  return { lastLba: Number(/^last-lba: (\d+)$/m.exec(text)?.[1]), parts };
}

/** what util-linux says about the table: sfdisk --verify (which exits 0 even when it counts errors), or fdisk's v */
function verify(path: string, sectorSize = 512): string {
  const r =
    sectorSize === 512 ? sh(["sfdisk", "--verify", path]) : sh(["fdisk", "-b", String(sectorSize), path], "v\nq\n");
  return r.out + r.err;
}

function grow(path: string, sectorSize = 512, opts: { index?: number } = {}) {
  const fd = openSync(path, "r+");
  try {
    const gpt = readGpt(fd, sectorSize, statSync(path).size);
    const plan = planGrow(gpt, DATA_LABEL, opts);
    if (!plan.full) writeGrow(fd, gpt, plan);
    return { gpt, plan };
  } finally {
    closeSync(fd);
  }
}

const APPLIANCE = [
  "name=AAOS-BOOT,size=2M,type=U",
  "name=AAOS-SYS,size=4M,type=L",
  "name=AAOS-CFG,size=2M",
  "name=AAOS-DATA,type=L",
];

test("crc32 is the IEEE CRC-32 the GPT uses", () => {
  expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  expect(crc32(new Uint8Array(0))).toBe(0);
});

test("an enlarged disk: AAOS-DATA grows to the end, both tables valid, sfdisk finds no error", () => {
  const img = makeImage("grow.img", 16, APPLIANCE);
  const before = sfdiskJson(img).table;
  expect(verify(img)).toContain("No errors detected");
  truncateSync(img, (16 + ADDED_MiB) * MiB);
  // the enlarged disk as the first boot finds it: sfdisk sees the backup table in the middle
  expect(verify(img)).toContain("The backup GPT table is not on the end of the device");

  const { plan } = grow(img);
  expect(plan.full).toBe(false);
  expect(plan.entry).toMatchObject({ name: DATA_LABEL, index: 4 });
  const sectors = ((16 + ADDED_MiB) * MiB) / 512;
  expect(plan.newAlternateLba).toBe(sectors - 1);

  const v = verify(img);
  expect(v).toContain("No errors detected");
  expect(v).not.toMatch(/mismatch|not on the end|corrupt/i);
  const { table, warnings } = sfdiskJson(img);
  expect(warnings).toBe("");
  // 128 entries of 128 bytes = 32 sectors, and the backup header: the last usable LBA is 34 before the end
  expect(table.lastlba).toBe(sectors - 34);
  const data = table.partitions.find((p: any) => p.name === DATA_LABEL);
  const old = before.partitions.find((p: any) => p.name === DATA_LABEL);
  expect(data.start).toBe(old.start);
  expect(data.start + data.size - 1).toBe(sectors - 34);
  // the MiB added, and the part of the last MiB sfdisk's alignment had left free
  expect(data.size - old.size).toBe((ADDED_MiB * MiB) / 512 + (before.lastlba - (old.start + old.size - 1)));
  // the other partitions, the GUIDs and names are untouched
  expect(table.partitions.slice(0, 3)).toEqual(before.partitions.slice(0, 3));
  expect(data.uuid).toBe(old.uuid);
  expect(table.id).toBe(before.id);

  // the protective MBR covers the new disk
  const mbr = readFileSync(img).subarray(0, 512);
  expect(mbr[446 + 4]).toBe(0xee);
  expect(mbr.readUInt32LE(446 + 12)).toBe(sectors - 1);

  // the backup alone: wipe the primary header, sfdisk falls back to the backup at the last LBA
  const copy = join(dir, "backup-only.img");
  expect(sh(["cp", "--sparse=always", img, copy]).code).toBe(0);
  const cfd = openSync(copy, "r+");
  writeSync(cfd, new Uint8Array(512), 0, 512, 512);
  closeSync(cfd);
  const fromBackup = sfdiskJson(copy);
  expect(fromBackup.warnings).toMatch(/primary GPT table is corrupt, but the backup appears OK/);
  expect(fromBackup.table.partitions).toEqual(
    table.partitions.map((p: any) => ({ ...p, node: p.node.replace(img, copy) })),
  );
});

test("a disk already filled is left alone, byte for byte", () => {
  const img = makeImage("full.img", 16, APPLIANCE);
  truncateSync(img, 32 * MiB);
  expect(grow(img).plan.full).toBe(false);
  const grown = readFileSync(img);
  const again = grow(img);
  expect(again.plan.full).toBe(true);
  expect(Buffer.compare(readFileSync(img), grown)).toBe(0);
  // and the image as sfdisk made it (the data partition already to the end) too
  const fresh = makeImage("fresh.img", 16, APPLIANCE);
  const bytes = readFileSync(fresh);
  expect(grow(fresh).plan.full).toBe(true);
  expect(Buffer.compare(readFileSync(fresh), bytes)).toBe(0);
});

test("the last partition on the disk is the one grown, whatever its entry number (A/B slots added later)", () => {
  // entries 1-4 as shipped, AAOS-DATA's entry 2 placed last on the disk
  const img = makeImage("order.img", 16, [
    "start=2048,name=AAOS-BOOT,size=2M,type=U",
    "start=18432,name=AAOS-DATA,type=L",
    "start=6144,name=AAOS-SYS-A,size=4M,type=L",
    "start=14336,name=AAOS-CFG,size=2M",
  ]);
  truncateSync(img, 64 * MiB);
  const { plan } = grow(img, 512, { index: 2 });
  expect(plan.entry).toMatchObject({ name: DATA_LABEL, index: 2 });
  expect(verify(img)).toContain("No errors detected");
  const data = sfdiskJson(img).table.partitions.find((p: any) => p.name === DATA_LABEL);
  expect(data.start + data.size - 1).toBe((64 * MiB) / 512 - 34);
});

test("refused, nothing written: another partition last, a partition number that does not match, a bad CRC", () => {
  const other = makeImage("other.img", 16, [...APPLIANCE.slice(0, 3), "name=AAOS-DATA,size=4M,type=L", "name=SWAP"]);
  truncateSync(other, 32 * MiB);
  let bytes = readFileSync(other);
  expect(() => grow(other)).toThrow(new GptError(`the last partition is SWAP, not ${DATA_LABEL}`));
  expect(Buffer.compare(readFileSync(other), bytes)).toBe(0);

  const img = makeImage("index.img", 16, APPLIANCE);
  truncateSync(img, 32 * MiB);
  bytes = readFileSync(img);
  expect(() => grow(img, 512, { index: 3 })).toThrow(/is partition 4 in the GPT, the kernel says 3/);
  expect(Buffer.compare(readFileSync(img), bytes)).toBe(0);

  // one bit of the entry array flipped: the CRC catches it
  const fd = openSync(img, "r+");
  const g = readGpt(fd, 512, statSync(img).size);
  const flipped = Buffer.from([bytes[g.entriesLba * 512 + 56]! ^ 1]);
  writeSync(fd, flipped, 0, 1, g.entriesLba * 512 + 56);
  closeSync(fd);
  expect(() => grow(img)).toThrow(/entry array CRC mismatch/);
  expect(lastPartition(g)?.name).toBe(DATA_LABEL);

  const none = join(dir, "none.img");
  writeFileSync(none, "");
  truncateSync(none, 8 * MiB);
  expect(() => grow(none)).toThrow(/no GPT/);
});

test("4096-byte sectors (NVMe, 4Kn disks): LBAs in 4 KiB units, 4 entry sectors", () => {
  const img = makeImage("4k.img", 16, APPLIANCE, 4096);
  const before = fdiskDump(img, 4096).parts[DATA_LABEL]!;
  truncateSync(img, 48 * MiB);
  expect(verify(img, 4096)).toContain("The backup GPT table is not on the end of the device");
  const { plan } = grow(img, 4096);
  expect(plan.full).toBe(false);
  const v = verify(img, 4096);
  expect(v).toContain("No errors detected");
  expect(v).not.toMatch(/mismatch|not on the end|corrupt/i);
  const sectors = (48 * MiB) / 4096;
  const after = fdiskDump(img, 4096);
  // 16 KiB of entries = 4 sectors, and the header
  expect(after.lastLba).toBe(sectors - 1 - 4 - 1);
  expect(after.parts[DATA_LABEL]).toEqual({ start: before.start, size: sectors - 1 - 4 - 1 - before.start + 1 });
});
