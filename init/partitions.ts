// Find partitions by name: the GPT partition label the kernel reports in
// /sys/class/block/*/uevent (PARTNAME=), else the file system's own label
// (FAT volume label, ext4 s_volume_name) probed from the device.
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";

export interface BlockDevice {
  name: string;
  devPath: string;
  partName?: string;
}

export function listBlockDevices(sysBlock = "/sys/class/block", devDir = "/dev"): BlockDevice[] {
  if (!existsSync(sysBlock)) return [];
  const out: BlockDevice[] = [];
  for (const name of readdirSync(sysBlock).sort()) {
    let uevent = "";
    try {
      uevent = readFileSync(`${sysBlock}/${name}/uevent`, "utf8");
    } catch {
      continue;
    }
    const kv = Object.fromEntries(
      uevent
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    out.push({ name, devPath: `${devDir}/${kv.DEVNAME ?? name}`, partName: kv.PARTNAME });
  }
  return out;
}

/** The label inside a FAT or ext2/3/4 superblock, or null. */
export function probeLabel(head: Uint8Array): { fs: "vfat" | "ext4"; label: string } | null {
  const ascii = (a: number, b: number) => Buffer.from(head.subarray(a, b)).toString("latin1");
  const trim = (s: string) => s.replace(/\0.*$/s, "").trim();
  if (head.length >= 1024 + 136 && head[1024 + 56] === 0x53 && head[1024 + 57] === 0xef) {
    return { fs: "ext4", label: trim(ascii(1024 + 120, 1024 + 136)) };
  }
  if (head.length >= 512 && head[510] === 0x55 && head[511] === 0xaa) {
    if (ascii(0x52, 0x57) === "FAT32") return { fs: "vfat", label: trim(ascii(0x47, 0x52)) };
    if (ascii(0x36, 0x39) === "FAT") return { fs: "vfat", label: trim(ascii(0x2b, 0x36)) };
  }
  return null;
}

function readHead(path: string, n = 4096): Uint8Array | null {
  let fd = -1;
  try {
    fd = openSync(path, "r");
    const buf = new Uint8Array(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } catch {
    return null;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** Device path for a label: GPT partition name first, then file system labels. */
export function findByLabel(label: string, devices = listBlockDevices()): string | null {
  const byPart = devices.find((d) => d.partName === label);
  if (byPart) return byPart.devPath;
  for (const d of devices) {
    const head = readHead(d.devPath);
    if (head && probeLabel(head)?.label === label) return d.devPath;
  }
  return null;
}

/** Wait for a labelled partition to appear (AHCI and NVMe probe asynchronously). */
export async function waitForLabel(label: string, timeoutMs: number): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dev = findByLabel(label);
    if (dev && existsSync(dev)) return dev;
    if (Date.now() >= deadline) return null;
    await Bun.sleep(50);
  }
}
