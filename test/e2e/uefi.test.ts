// The disk image as built (out/aaos.img) boots through OVMF (UEFI) to
// system.ready: firmware → EFI/BOOT/BOOTX64.EFI (systemd-boot) → loader/entries/aaos-1-a.conf →
// aaos/a/bzImage (EFI stub), root=PARTLABEL=AAOS-SYS-A → stage0 → the agent kernel.
import { afterAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { imageArtifacts } from "../../qemu/disk.ts";

let vm: VM | null = null;
let dir = "";
afterAll(() => {
  vm?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("out/aaos.img boots under OVMF to system.ready and powers off", async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  // a copy: the image we ship stays pristine (its data partition unformatted by a boot)
  dir = mkdtempSync(join(tmpdir(), "aaos-uefi-"));
  const disk = join(dir, "aaos.img");
  copyFileSync(a.image, disk);
  vm = await bootVM({ image: disk, uefi: true, noNetwork: true });
  const ready = await vm.waitForReady(300_000);
  expect(ready.params.version).toBeString();
  expect((await vm.call("system.ping")).pong).toBe(true);
  expect(await vm.powerOff(120_000)).toBe(0);
  vm = null;
}, 600_000);
