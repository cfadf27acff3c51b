// The disk image as built (out/aaos.img) boots through OVMF (UEFI) to
// system.ready: firmware → EFI/BOOT/BOOTX64.EFI (systemd-boot) → loader/entries/aaos-1-a.conf →
// aaos/a/bzImage (EFI stub), root=PARTLABEL=AAOS-SYS-A → stage0 → the agent kernel.
import { afterAll, expect, test } from "bun:test";
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { checkDataFs, gptPartitions, imageArtifacts } from "../../qemu/disk.ts";
import { planGrow, readGpt, writeGrow } from "../../init/gpt.ts";

let vm: VM | null = null;
let dir = "";
afterAll(() => {
  vm?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// The copy is also a disk enlarged by 256 MiB whose first boot was cut off
// halfway through growing AAOS-DATA: the GPT already rewritten to the new end
// (here by init/gpt.ts on the host), the ext4 not yet grown. The firmware must
// find the ESP through that table (OVMF checks its CRCs), and this boot only
// has the file system left to grow.
test("out/aaos.img boots under OVMF to system.ready and powers off", async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  // a copy: the image we ship stays pristine (its data partition unformatted by a boot)
  dir = mkdtempSync(join(tmpdir(), "aaos-uefi-"));
  const disk = join(dir, "aaos.img");
  copyFileSync(a.image, disk);
  truncateSync(disk, statSync(disk).size + (256 << 20));
  const fd = openSync(disk, "r+");
  try {
    const gpt = readGpt(fd, 512, statSync(disk).size);
    writeGrow(fd, gpt, planGrow(gpt, "AAOS-DATA"));
  } finally {
    closeSync(fd);
  }
  const data = gptPartitions(disk).find((p) => p.name === "AAOS-DATA")!;
  vm = await bootVM({ image: disk, uefi: true, noNetwork: true });
  const ready = await vm.waitForReady(300_000);
  expect(ready.params.version).toBeString();
  expect((await vm.call("system.ping")).pong).toBe(true);
  // the table was done; the kernel read the grown partition at boot; the ext4 was what was left
  const grow = (await vm.call("system.info")).boot.data.grow;
  expect(grow).toMatchObject({ status: "grown", done: ["ext4"] });
  expect(grow.partition_bytes_before).toBe((data.lastLba - data.firstLba + 1) * 512);
  expect(grow.partition_bytes_after).toBe(grow.partition_bytes_before);
  expect(grow.fs_bytes_after - grow.fs_bytes_before).toBeGreaterThan((256 - 16) << 20);
  expect((await vm.call("system.stats")).disk.total_bytes).toBe(grow.fs_bytes_after);
  expect(await vm.powerOff(120_000)).toBe(0);
  vm = null;
  const fs = checkDataFs(disk);
  expect({ clean: fs.clean, fsckOk: fs.fsckOk }).toEqual({ clean: true, fsckOk: true });
}, 600_000);
