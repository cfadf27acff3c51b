// The disk formats `make image` writes for other hypervisors, and the disk
// controllers other machines have. out/aaos.qcow2, .vmdk and .vhdx are
// checked by qemu-img and compared with out/aaos.img sector by sector; then
// out/aaos.qcow2 boots through OVMF (UEFI) from an NVMe disk: the firmware
// finds the ESP on it, the kernel its root (root=PARTLABEL=AAOS-SYS), PID 1
// AAOS-CFG and AAOS-DATA, and system.info names the NVMe partitions. The
// AHCI (SATA) boot is test/e2e/make-run.test.ts's, shared with make run's
// proof. The shipped files are never written: QEMU's snapshot=on keeps the
// guest's writes in a temporary overlay.
import { afterAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { OUT, imageArtifacts } from "../../qemu/disk.ts";

const FORMATS = ["qcow2", "vmdk", "vhdx"] as const;
const formatFile = (f: string) => join(OUT, `aaos.${f}`);
const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

let vm: VM | null = null;
afterAll(() => vm?.kill());

function qemuImg(...args: string[]) {
  const r = Bun.spawnSync(["qemu-img", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, text: r.stdout.toString() + r.stderr.toString() };
}

test("make image wrote out/aaos.qcow2, .vmdk and .vhdx: each is sound and holds exactly out/aaos.img", () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  const sizes: Record<string, number> = {};
  for (const f of FORMATS) {
    const file = formatFile(f);
    if (!existsSync(file)) throw new Error(`${file} missing: make image writes it`);
    const info = JSON.parse(qemuImg("info", "--output=json", file).text);
    expect(info.format).toBe(f);
    expect(info["virtual-size"]).toBe(Bun.file(a.image).size);
    const check = qemuImg("check", "-f", f, file);
    expect(check.text).toContain("No errors were found");
    expect(check.code).toBe(0);
    // every sector equal (the sizes are equal, above; not -s, which also compares what is allocated)
    const cmp = qemuImg("compare", "-f", "raw", "-F", f, a.image, file);
    expect(cmp.text.trim()).toBe("Images are identical.");
    expect(cmp.code).toBe(0);
    sizes[f] = Bun.file(file).size;
  }
  if (FORMATS.includes("vmdk")) {
    // the descriptor inside the VMDK names the file it is in
    expect(readFileSync(formatFile("vmdk")).subarray(0, 4096).toString("latin1")).toContain('SPARSE "aaos.vmdk"');
  }
  console.log(
    `test/e2e/disks: aaos.img ${Bun.file(a.image).size} bytes; ` +
      FORMATS.map((f) => `aaos.${f} ${sizes[f]} bytes`).join(", "),
  );
});

test("out/aaos.qcow2 boots through OVMF from an NVMe disk to system.ready, finds its partitions there, powers off", async () => {
  const qcow2 = formatFile("qcow2");
  const before = sha(qcow2);
  const t0 = Date.now();
  vm = await bootVM({ image: qcow2, disk: { bus: "nvme", format: "qcow2" }, snapshot: true, uefi: true });
  const ready = await vm.waitForReady(300_000);
  expect(ready.params.version).toBeString();
  const info = await vm.call("system.info");
  expect(info.mode).toBe("init");
  // AAOS-SYS is the root the kernel mounted; AAOS-CFG and AAOS-DATA are partitions of the same NVMe namespace
  expect(info.boot.config).toMatchObject({ mounted: true });
  expect(info.boot.config.device).toMatch(/^\/dev\/nvme0n1p\d+$/);
  expect(info.boot.data).toMatchObject({ mounted: true, persistent: true });
  expect(info.boot.data.device).toMatch(/^\/dev\/nvme0n1p\d+$/);
  expect(await vm.powerOff(120_000)).toBe(0);
  vm = null;
  console.log(`test/e2e/disks: NVMe + OVMF + qcow2: ready in ${ready.ms} ms, ${Date.now() - t0} ms to power-off`);
  // snapshot=on: the shipped file is as it was
  expect(sha(qcow2)).toBe(before);
}, 600_000);
