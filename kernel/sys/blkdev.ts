// Block device and ext4 ioctls for PID 1's data-disk grow (init/growdata.ts):
// BLKPG_RESIZE_PARTITION tells the kernel a partition of a disk in use is now
// larger (BLKRRPART would refuse: a partition is mounted), and
// EXT4_IOC_RESIZE_FS grows a mounted ext4 to a new block count. There are no
// binaries on the image (no partx, no resize2fs): the structs are built here.
import { ptr } from "bun:ffi";
import { check, libc } from "./libc.ts";

/** _IO(0x12, 105), include/uapi/linux/fs.h */
export const BLKPG = 0x1269;
/** include/uapi/linux/blkpg.h */
export const BLKPG_RESIZE_PARTITION = 3;
/** _IOW('f', 16, __u64), fs/ext4/ext4.h */
export const EXT4_IOC_RESIZE_FS = 0x40086610;

/** sizeof(struct blkpg_partition) on x86_64: two long long, an int, two char[64], padded to 8 */
const BLKPG_PARTITION_SIZE = 152;
/** sizeof(struct blkpg_ioctl_arg) on x86_64: three int, a pointer */
const BLKPG_IOCTL_ARG_SIZE = 24;

/**
 * ioctl(diskFd, BLKPG, {BLKPG_RESIZE_PARTITION, {start, length, pno}}): the
 * kernel's idea of partition pno of the disk open on diskFd becomes
 * [start, start+length) bytes. start must be the partition's current start.
 */
export function resizePartition(diskFd: number, pno: number, startBytes: number, lengthBytes: number): void {
  const part = new Uint8Array(BLKPG_PARTITION_SIZE);
  const pv = new DataView(part.buffer);
  pv.setBigInt64(0, BigInt(startBytes), true);
  pv.setBigInt64(8, BigInt(lengthBytes), true);
  pv.setInt32(16, pno, true);
  const arg = new Uint8Array(BLKPG_IOCTL_ARG_SIZE);
  const av = new DataView(arg.buffer);
  av.setInt32(0, BLKPG_RESIZE_PARTITION, true);
  av.setInt32(4, 0, true); // flags
  av.setInt32(8, BLKPG_PARTITION_SIZE, true); // datalen
  av.setBigUint64(16, BigInt(ptr(part)), true);
  check(
    "ioctl(BLKPG_RESIZE_PARTITION)",
    libc().ioctl(diskFd, BigInt(BLKPG), arg),
    `partition ${pno} to ${lengthBytes} bytes`,
  );
}

/** ioctl(fd, EXT4_IOC_RESIZE_FS, &blocks): grow the mounted ext4 that fd (any file or directory on it) lives on. */
export function resizeExt4(fd: number, blocks: number): void {
  const n = new BigUint64Array([BigInt(blocks)]);
  check("ioctl(EXT4_IOC_RESIZE_FS)", libc().ioctl(fd, BigInt(EXT4_IOC_RESIZE_FS), n), `to ${blocks} blocks`);
}
