// A real full disk for host tests: a small tmpfs mounted where the kernel
// keeps --data, filled to the last byte by a ballast file that can be
// removed to free the space again. Needs root (CI runs as root).
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SmallDisk {
  /** the kernel's directory (startKernel({dir})); <dir>/data is the tmpfs */
  dir: string;
  dataDir: string;
  /** write the ballast until the disk refuses a single byte */
  fill(): void;
  /** remove the ballast */
  free(): void;
  unmount(): void;
}

export function canMount(): boolean {
  return process.getuid?.() === 0;
}

export function smallDisk(sizeKiB = 4096): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), "aaos-full-"));
  const dataDir = join(dir, "data");
  mkdirSync(dataDir);
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${sizeKiB}k`, "tmpfs", dataDir], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`mount tmpfs: ${r.stderr.toString()}`);
  const ballast = join(dataDir, "ballast");
  return {
    dir,
    dataDir,
    fill() {
      const fd = openSync(ballast, "a");
      try {
        for (const size of [1 << 16, 4096, 512, 1]) {
          const buf = Buffer.alloc(size, 0x61);
          for (;;) {
            try {
              writeSync(fd, buf);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw e;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    free() {
      rmSync(ballast, { force: true });
    },
    unmount() {
      Bun.spawnSync(["umount", "-l", dataDir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
