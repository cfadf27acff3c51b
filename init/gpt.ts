// The GUID partition table, read and grown in place: the last partition is
// stretched to the end of the disk and the backup table moved there (UEFI
// spec 2.10, 5.3). Works on anything with positioned reads and writes: the
// whole-disk block device in the appliance, an image file in the tests.
//
// The order of the writes keeps the disk bootable if the power goes at any
// point: the new backup (entries, then header) at the new end first, then the
// primary entries, then the primary header, then the protective MBR. Until
// the primary header is written the old primary table (and its old backup,
// which nothing overwrote) is the valid one; a primary whose entries were
// written but not its header fails its CRC, and the kernel and firmware take
// the backup at the disk's last LBA, which is already the new one.
import { fsyncSync, readSync, writeSync } from "node:fs";

export const GPT_SIGNATURE = "EFI PART";
/** entries area larger than this is not a table we wrote (128 entries of 128 bytes is 16 KiB) */
const MAX_ENTRIES_BYTES = 1 << 20;

export interface GptEntry {
  /** 1-based, as the kernel numbers partitions (vda4 is index 4) */
  index: number;
  name: string;
  firstLba: number;
  lastLba: number;
}

export interface Gpt {
  sectorSize: number;
  /** the disk's size in sectors */
  diskSectors: number;
  header: Uint8Array;
  headerSize: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entries: Uint8Array;
  used: GptEntry[];
}

export class GptError extends Error {
  override name = "GptError";
}

/** CRC-32 (IEEE 802.3, reflected), as the UEFI spec and zlib compute it: Bun's native one (a JS loop costs ~0.1 s at boot under TCG) */
export function crc32(data: Uint8Array): number {
  return Bun.hash.crc32(data) >>> 0;
}

function readAt(fd: number, offset: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, offset + got);
    if (n <= 0) throw new GptError(`short read at byte ${offset + got}`);
    got += n;
  }
  return buf;
}

function writeAt(fd: number, offset: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
}

const u64 = (v: DataView, o: number) => Number(v.getBigUint64(o, true));

/** the header's CRC over its first headerSize bytes with the CRC field zeroed */
function headerCrc(header: Uint8Array, headerSize: number): number {
  const h = header.slice(0, headerSize);
  new DataView(h.buffer).setUint32(16, 0, true);
  return crc32(h);
}

/** Read and check the primary GPT (header at LBA 1, its CRC, its entries' CRC). */
export function readGpt(fd: number, sectorSize: number, diskBytes: number): Gpt {
  if (sectorSize < 512 || sectorSize & (sectorSize - 1)) throw new GptError(`bad sector size ${sectorSize}`);
  const diskSectors = Math.floor(diskBytes / sectorSize);
  const header = readAt(fd, sectorSize, sectorSize);
  const v = new DataView(header.buffer);
  if (new TextDecoder("latin1").decode(header.subarray(0, 8)) !== GPT_SIGNATURE)
    throw new GptError("no GPT (no EFI PART signature at LBA 1)");
  const headerSize = v.getUint32(12, true);
  if (headerSize < 92 || headerSize > sectorSize) throw new GptError(`bad GPT header size ${headerSize}`);
  if (headerCrc(header, headerSize) !== v.getUint32(16, true)) throw new GptError("primary GPT header CRC mismatch");
  if (u64(v, 24) !== 1) throw new GptError("primary GPT header does not name LBA 1 as its own");
  const entryCount = v.getUint32(80, true);
  const entrySize = v.getUint32(84, true);
  if (entrySize < 128 || entrySize % 8 || entryCount * entrySize > MAX_ENTRIES_BYTES)
    throw new GptError(`bad GPT entry array (${entryCount} × ${entrySize} bytes)`);
  const entriesLba = u64(v, 72);
  const entries = readAt(fd, entriesLba * sectorSize, entryCount * entrySize);
  if (crc32(entries) !== v.getUint32(88, true)) throw new GptError("primary GPT entry array CRC mismatch");
  const used: GptEntry[] = [];
  const ev = new DataView(entries.buffer);
  for (let i = 0; i < entryCount; i++) {
    const at = i * entrySize;
    if (entries.subarray(at, at + 16).every((b) => b === 0)) continue;
    used.push({
      index: i + 1,
      name: new TextDecoder("utf-16le").decode(entries.subarray(at + 56, at + 128)).replace(/\0.*$/s, ""),
      firstLba: u64(ev, at + 32),
      lastLba: u64(ev, at + 40),
    });
  }
  return {
    sectorSize,
    diskSectors,
    header,
    headerSize,
    alternateLba: u64(v, 32),
    firstUsableLba: u64(v, 40),
    lastUsableLba: u64(v, 48),
    entriesLba,
    entryCount,
    entrySize,
    entries,
    used,
  };
}

/** the partition that ends last on the disk, or null for an empty table */
export function lastPartition(gpt: Gpt): GptEntry | null {
  let last: GptEntry | null = null;
  for (const e of gpt.used) if (!last || e.lastLba > last.lastLba) last = e;
  return last;
}

export interface GrowPlan {
  /** the partition that is grown */
  entry: GptEntry;
  newLastLba: number;
  newAlternateLba: number;
  newLastUsableLba: number;
  /** nothing to write: the partition already ends (within minGrowBytes) at the last usable LBA, the backup at the end */
  full: boolean;
}

/**
 * What growing `name` to the disk's end would write. Throws GptError when it
 * must not be done: the last partition is another one (or not the expected
 * index), a partition overlaps it, the disk is smaller than its table says.
 */
export function planGrow(gpt: Gpt, name: string, opts: { index?: number; minGrowBytes?: number } = {}): GrowPlan {
  const last = lastPartition(gpt);
  if (!last) throw new GptError("the GPT has no partitions");
  if (last.name !== name) throw new GptError(`the last partition is ${last.name || `#${last.index}`}, not ${name}`);
  if (opts.index !== undefined && last.index !== opts.index)
    throw new GptError(`${name} is partition ${last.index} in the GPT, the kernel says ${opts.index}`);
  for (const e of gpt.used)
    if (e !== last && e.lastLba >= last.firstLba)
      throw new GptError(`partition ${e.name || `#${e.index}`} overlaps ${name}`);
  const entrySectors = Math.ceil((gpt.entryCount * gpt.entrySize) / gpt.sectorSize);
  const newAlternateLba = gpt.diskSectors - 1;
  const newLastUsableLba = newAlternateLba - entrySectors - 1;
  if (newAlternateLba < gpt.alternateLba || newLastUsableLba < last.lastLba)
    throw new GptError(
      `the disk (${gpt.diskSectors} sectors) is smaller than its GPT says (backup header at LBA ${gpt.alternateLba})`,
    );
  const minGrowSectors = Math.ceil((opts.minGrowBytes ?? 1 << 20) / gpt.sectorSize);
  const full = gpt.alternateLba === newAlternateLba && newLastUsableLba - last.lastLba < minGrowSectors;
  return { entry: last, newLastLba: newLastUsableLba, newAlternateLba, newLastUsableLba, full };
}

/** Write the grown table: backup at the disk's new end, then the primary, then the protective MBR; fsync between. */
export function writeGrow(fd: number, gpt: Gpt, plan: GrowPlan): void {
  const ss = gpt.sectorSize;
  const entries = gpt.entries.slice();
  new DataView(entries.buffer).setBigUint64((plan.entry.index - 1) * gpt.entrySize + 40, BigInt(plan.newLastLba), true);
  const entriesCrc = crc32(entries);
  const entrySectors = Math.ceil(entries.length / ss);
  const padded = new Uint8Array(entrySectors * ss);
  padded.set(entries);

  const makeHeader = (myLba: number, altLba: number, entriesLba: number) => {
    const h = new Uint8Array(ss);
    h.set(gpt.header.subarray(0, gpt.headerSize));
    const v = new DataView(h.buffer);
    v.setBigUint64(24, BigInt(myLba), true);
    v.setBigUint64(32, BigInt(altLba), true);
    v.setBigUint64(48, BigInt(plan.newLastUsableLba), true);
    v.setBigUint64(72, BigInt(entriesLba), true);
    v.setUint32(88, entriesCrc, true);
    v.setUint32(16, headerCrc(h, gpt.headerSize), true);
    return h;
  };
  const backupEntriesLba = plan.newAlternateLba - entrySectors;
  writeAt(fd, backupEntriesLba * ss, padded);
  writeAt(fd, plan.newAlternateLba * ss, makeHeader(plan.newAlternateLba, 1, backupEntriesLba));
  fsyncSync(fd);
  writeAt(fd, gpt.entriesLba * ss, padded);
  fsyncSync(fd);
  writeAt(fd, ss, makeHeader(1, plan.newAlternateLba, gpt.entriesLba));
  fsyncSync(fd);

  // the protective MBR's 0xEE partition covers the whole disk (or 0xFFFFFFFF sectors)
  const mbr = readAt(fd, 0, 512);
  const mv = new DataView(mbr.buffer);
  if (mbr[510] === 0x55 && mbr[511] === 0xaa) {
    for (let i = 0; i < 4; i++) {
      const at = 446 + i * 16;
      if (mbr[at + 4] !== 0xee || mv.getUint32(at + 8, true) !== 1) continue;
      const size = Math.min(gpt.diskSectors - 1, 0xffffffff);
      if (mv.getUint32(at + 12, true) !== size) {
        mv.setUint32(at + 12, size, true);
        writeAt(fd, 0, mbr);
        fsyncSync(fd);
      }
      break;
    }
  }
}
