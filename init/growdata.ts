// The data partition fills its drive: at every boot, with AAOS-DATA mounted,
// PID 1 grows the last partition of its disk to the disk's end if that
// partition is AAOS-DATA, in three steps that each look at what is already
// done, so a boot after an interrupted grow finishes it and a disk already
// filled costs a few reads:
//   1. the GPT: AAOS-DATA's last LBA and the backup table moved to the disk's
//      new end (init/gpt.ts), when the table does not reach it;
//   2. the kernel: BLKPG_RESIZE_PARTITION, when its idea of the partition is
//      smaller than the table's (BLKRRPART refuses a disk in use);
//   3. the file system: EXT4_IOC_RESIZE_FS on the mounted /data, when the
//      ext4 is smaller than its partition.
// Nothing here throws: whatever goes wrong is the report's reason, and the
// kernel serves with the size the disk has.
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  statfsSync,
  constants as fsc,
} from "node:fs";
import { basename, dirname } from "node:path";
import { resizeExt4, resizePartition } from "../kernel/sys/blkdev.ts";
import { GptError, planGrow, readGpt, writeGrow } from "./gpt.ts";

export interface GrowReport {
  /** grown: something was made larger; full: nothing to do; skipped: not ours to grow (reason); failed: reason */
  status: "grown" | "full" | "skipped" | "failed";
  reason?: string;
  /** the whole disk, e.g. /dev/vda */
  disk?: string;
  disk_bytes?: number;
  partition_bytes_before?: number;
  partition_bytes_after?: number;
  /** the file system's size as statfs(2) (and system.stats) reports it */
  fs_bytes_before?: number;
  fs_bytes_after?: number;
  /** the steps this boot did: "gpt", "blkpg", "ext4" */
  done: string[];
}

/** less than this to gain and the file system is left as it is (ext4 may trim a small last group anyway) */
const MIN_FS_GROW_BYTES = 4 << 20;
const EXT4_FEATURE_INCOMPAT_64BIT = 0x80;

function readNumber(path: string): number {
  const n = Number(readFileSync(path, "utf8").trim());
  if (!Number.isFinite(n)) throw new Error(`${path}: not a number`);
  return n;
}

function statfsBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.blocks * s.bsize;
}

/** block size and block count from the ext4 superblock of the device (its page cache: current while mounted) */
function ext4Geometry(device: string): { blockSize: number; blocks: number; is64bit: boolean } {
  const fd = openSync(device, "r");
  try {
    const sb = new Uint8Array(1024);
    if (readSync(fd, sb, 0, 1024, 1024) !== 1024) throw new Error(`${device}: short read of the superblock`);
    const v = new DataView(sb.buffer);
    if (v.getUint16(56, true) !== 0xef53) throw new Error(`${device}: not ext2/3/4`);
    const is64bit = (v.getUint32(0x60, true) & EXT4_FEATURE_INCOMPAT_64BIT) !== 0;
    const blocks = v.getUint32(4, true) + (is64bit ? v.getUint32(0x150, true) * 2 ** 32 : 0);
    return { blockSize: 1024 << v.getUint32(24, true), blocks, is64bit };
  } finally {
    closeSync(fd);
  }
}

/**
 * Grow `device` (the mounted AAOS-DATA partition, e.g. /dev/vda4) and the
 * ext4 on `mountPoint` to the end of its disk. Never throws.
 */
export function growDataPartition(opts: {
  device: string;
  mountPoint: string;
  label: string;
  sysBlock?: string;
  devDir?: string;
}): GrowReport {
  const sysBlock = opts.sysBlock ?? "/sys/class/block";
  const devDir = opts.devDir ?? "/dev";
  const report: GrowReport = { status: "full", done: [] };
  let diskFd = -1;
  try {
    const part = basename(realpathSync(opts.device));
    const partSys = `${sysBlock}/${part}`;
    if (!existsSync(`${partSys}/partition`)) {
      report.status = "skipped";
      report.reason = `${opts.device} is not a partition`;
      return report;
    }
    const pno = readNumber(`${partSys}/partition`);
    const startBytes = readNumber(`${partSys}/start`) * 512;
    const kernelBytes = () => readNumber(`${partSys}/size`) * 512;
    report.partition_bytes_before = kernelBytes();
    report.fs_bytes_before = statfsBytes(opts.mountPoint);
    const disk = basename(dirname(realpathSync(partSys)));
    const diskSys = `${sysBlock}/${disk}`;
    report.disk = `${devDir}/${disk}`;
    report.disk_bytes = readNumber(`${diskSys}/size`) * 512;
    const sectorSize = readNumber(`${diskSys}/queue/logical_block_size`);

    // 1. the partition table
    diskFd = openSync(report.disk, fsc.O_RDWR);
    let plan;
    let gpt;
    try {
      gpt = readGpt(diskFd, sectorSize, report.disk_bytes);
      plan = planGrow(gpt, opts.label, { index: pno });
      if (plan.entry.firstLba * sectorSize !== startBytes)
        throw new GptError(`the GPT and the kernel disagree on where ${opts.label} starts`);
    } catch (err) {
      if (!(err instanceof GptError)) throw err;
      report.status = "skipped";
      report.reason = err.message;
      return report;
    }
    if (!plan.full) {
      writeGrow(diskFd, gpt, plan);
      report.done.push("gpt");
    }
    const lastLba = plan.full ? plan.entry.lastLba : plan.newLastLba;
    const tableBytes = (lastLba - plan.entry.firstLba + 1) * sectorSize;

    // 2. the kernel's partition
    if (kernelBytes() < tableBytes) {
      resizePartition(diskFd, pno, startBytes, tableBytes);
      report.done.push("blkpg");
    }
    report.partition_bytes_after = kernelBytes();

    // 3. the file system, online
    const geo = ext4Geometry(opts.device);
    let target = Math.floor(report.partition_bytes_after / geo.blockSize);
    if (!geo.is64bit) target = Math.min(target, 2 ** 32 - 1);
    if ((target - geo.blocks) * geo.blockSize >= MIN_FS_GROW_BYTES) {
      const dirFd = openSync(opts.mountPoint, fsc.O_RDONLY | fsc.O_DIRECTORY);
      try {
        resizeExt4(dirFd, target);
      } finally {
        closeSync(dirFd);
      }
      report.done.push("ext4");
    }
    report.fs_bytes_after = statfsBytes(opts.mountPoint);
    if (report.done.length) report.status = "grown";
    return report;
  } catch (err) {
    report.status = "failed";
    report.reason = (err as Error).message;
    return report;
  } finally {
    if (diskFd >= 0) closeSync(diskFd);
  }
}
