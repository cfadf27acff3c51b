// Boot and image figures (make bench, section "boot and image").
//
// Boot-to-ready of our image under QEMU TCG beside the same Linux kernel
// booting a trivial static init that prints one line and powers off: same
// run, same QEMU flags (only -initrd differs), so the ratio is the figure.
// Beside it, where our boot's time went (system.info's boot.steps_ms, median
// of the rounds): Linux to PID 1, stage0's execve to main's body (Bun's start,
// module evaluation), init's steps, the kernel's, and what lies before Linux's
// clock starts (QEMU, firmware, decompression: the total less boot.ready_ms).
// Then the alternatives for carrying the 100+ MB kernel binary (erofs
// partition, lz4hc erofs, a zstd initramfs), and the sizes.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Figure } from "./figure.ts";
import { bootVM } from "../qemu/harness.ts";
import { cleanupDisks, makeDisk, OUT } from "../qemu/disk.ts";

const ROUNDS = Number(process.env.AAOS_BENCH_BOOT_ROUNDS ?? 3);
const TRIVIAL_LINE = "trivial-init: ready";

// it also says when Linux ran it (CLOCK_BOOTTIME, ms), to compare with our stage0's
const TRIVIAL_C = `
#include <stdio.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>
int main(void) {
  struct timespec t;
  clock_gettime(CLOCK_BOOTTIME, &t);
  char m[96];
  int n = snprintf(m, sizeof m, "${TRIVIAL_LINE} boottime_ms=%ld\\n", (long)t.tv_sec * 1000 + t.tv_nsec / 1000000);
  write(1, m, n);
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}
`;

function run(cmd: string[], opts: { cwd?: string; stdin?: Uint8Array } = {}): Buffer {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, stdin: opts.stdin, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** newc cpio of a directory (paths relative, root-owned) */
function cpio(dir: string, out: string, compress?: string[]) {
  const list = run(["find", ".", "-mindepth", "1"], { cwd: dir });
  const archive = run(["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"], { cwd: dir, stdin: list });
  writeFileSync(out, compress ? run(compress, { stdin: archive }) : archive);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function bootTrivial(kernel: string, disk: string, initrd: string): Promise<{ ms: number; linux: number }> {
  const vm = await bootVM({ kernel, image: disk, initrd, snapshot: true });
  try {
    const deadline = Date.now() + 120_000;
    const line = new RegExp(`${TRIVIAL_LINE} boottime_ms=(\\d+)\\s`);
    let m: RegExpExecArray | null;
    while (!(m = line.exec(vm.consoleLog()))) {
      if (Date.now() > deadline)
        throw new Error(`trivial init never printed; console:\n${vm.consoleLog().slice(-2000)}`);
      await Bun.sleep(10);
    }
    const ms = Date.now() - vm.startedAt;
    await vm.waitExit(60_000);
    return { ms, linux: Number(m[1]) };
  } finally {
    vm.kill();
  }
}

interface OurBoot {
  ms: number;
  /** system.info's boot.steps_ms, and "before-linux": the total less boot.ready_ms */
  steps: Record<string, number>;
}

async function bootOurs(kernel: string, disk: string, initrd?: string): Promise<OurBoot> {
  const vm = await bootVM({ kernel, image: disk, initrd, snapshot: true });
  try {
    const { ms } = await vm.waitForReady(300_000);
    const boot = (await vm.call("system.info")).boot ?? {};
    const steps: Record<string, number> = { ...boot.steps_ms };
    if (typeof boot.ready_ms === "number") steps["before-linux"] = ms - boot.ready_ms;
    await vm.powerOff(120_000);
    return { ms, steps };
  } finally {
    vm.kill();
  }
}

/** what each step of boot.steps_ms is (init/bootclock.ts, init/index.ts, kernel/main.ts) */
const STEP_NAMES: Record<string, string> = {
  "before-linux": "QEMU, firmware, bzImage decompression (the total less boot.ready_ms)",
  linux: "Linux to PID 1 (CLOCK_BOOTTIME at stage0)",
  exec: "stage0's execve to Bun's start",
  runtime: "Bun's start to the bundle's first statement",
  modules: "module evaluation: the bundle's first statement to main's body",
  "to-main": "stage0's execve to main's body (exec + runtime + modules)",
  main: "main's body to init",
};

/** init's and the kernel's steps, in boot order, the rest of the boot */
function breakdown(ours: OurBoot[], trivialLinux: number): Figure[] {
  const names: string[] = [];
  for (const b of ours) for (const k of Object.keys(b.steps)) if (!names.includes(k)) names.push(k);
  const order = ["before-linux", "linux", "exec", "runtime", "modules", "to-main", "main"];
  names.sort((a, b) => {
    const i = order.indexOf(a),
      j = order.indexOf(b);
    return (i < 0 ? order.length : i) - (j < 0 ? order.length : j);
  });
  return names.map((k) => {
    const f: Figure = {
      name: `boot step ${k}: ${STEP_NAMES[k] ?? "init/index.ts or kernel/main.ts step"}`,
      value: median(ours.map((b) => b.steps[k] ?? 0)),
      unit: "ms",
    };
    if (k === "linux") f.baseline = { name: "Linux to the trivial init", value: trivialLinux };
    return f;
  });
}

export async function benchBoot(): Promise<Figure[]> {
  const bz = join(OUT, "bzImage");
  const bin = join(OUT, "aaos-kernel");
  const stage0 = join(OUT, "stage0");
  const sys = join(OUT, "sys.erofs");
  const img = join(OUT, "aaos.img");
  for (const f of [bz, bin, stage0, sys, img])
    if (!existsSync(f)) throw new Error(`${f} missing: run make image first`);
  const work = mkdtempSync(join(tmpdir(), "aaos-bench-boot-"));

  // the trivial init, as an initramfs for the same kernel
  const triv = join(work, "trivial");
  mkdirSync(triv);
  writeFileSync(join(work, "trivial.c"), TRIVIAL_C);
  run(["musl-gcc", "-static", "-Os", "-s", "-o", join(triv, "init"), join(work, "trivial.c")]);
  const trivialCpio = join(work, "trivial.cpio");
  cpio(triv, trivialCpio);

  // our image with a config partition that needs no network
  const disk = makeDisk({ "kernel.yaml": "network:\n  mode: none\n" }, { out: join(work, "aaos.img") });

  const ours: OurBoot[] = [];
  const trivial: { ms: number; linux: number }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    trivial.push(await bootTrivial(bz, disk, trivialCpio));
    ours.push(await bootOurs(bz, disk));
  }
  const figs: Figure[] = [];
  const o = median(ours.map((b) => b.ms));
  const t = median(trivial.map((b) => b.ms));
  figs.push({
    name: `boot to system.ready (erofs AAOS-SYS, TCG, median of ${ROUNDS}; each: ${ours.map((b) => b.ms).join(", ")})`,
    value: o,
    unit: "ms",
    baseline: {
      name: `same kernel, trivial static init prints a line (${trivial.map((b) => b.ms).join(", ")})`,
      value: t,
    },
  });
  figs.push(...breakdown(ours, median(trivial.map((b) => b.linux))));

  // alternatives for carrying the binary, one boot each (AAOS_BENCH_BOOT_ALTERNATIVES=0 skips)
  if (process.env.AAOS_BENCH_BOOT_ALTERNATIVES !== "0") {
    // lz4hc-compressed erofs
    const cfgNone = join(work, "cfg-none");
    mkdirSync(cfgNone, { recursive: true });
    writeFileSync(join(cfgNone, "kernel.yaml"), "network:\n  mode: none\n");
    const lz = join(work, "sys-lz4hc.erofs");
    const r = Bun.spawnSync([join(import.meta.dir, "../image/mkrootfs.sh"), bin, stage0, lz], {
      env: { ...process.env, AAOS_EROFS_COMPRESS: "lz4hc" },
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`mkrootfs lz4hc: ${r.stderr}`);
    const lzDisk = join(work, "aaos-lz4hc.img");
    const m = Bun.spawnSync(
      [
        join(import.meta.dir, "../image/mkdisk.sh"),
        "--bzimage",
        bz,
        "--sys",
        lz,
        "--config",
        cfgNone,
        "--out",
        lzDisk,
        "--data-mb",
        "64",
      ],
      { stderr: "pipe" },
    );
    if (m.exitCode !== 0) throw new Error(`mkdisk lz4hc: ${m.stderr}`);
    figs.push({
      name: "alternative: lz4hc-compressed erofs AAOS-SYS",
      value: (await bootOurs(bz, lzDisk)).ms,
      unit: "ms",
      baseline: { name: "uncompressed erofs (chosen)", value: o },
    });

    // the whole system in a zstd initramfs (-initrd is unpacked exactly like an embedded one)
    const rd = join(work, "rootfs");
    for (const d of [
      "usr/bin",
      "lib64",
      "lib/x86_64-linux-gnu",
      "proc",
      "dev",
      "sys",
      "run",
      "tmp",
      "config",
      "data",
      "etc",
    ])
      mkdirSync(join(rd, d), { recursive: true });
    copyFileSync(stage0, join(rd, "init"));
    copyFileSync(bin, join(rd, "usr/bin/aaos-kernel"));
    run(["chmod", "755", join(rd, "init"), join(rd, "usr/bin/aaos-kernel")]);
    for (const l of ["libc.so.6", "libpthread.so.0", "libdl.so.2", "libm.so.6", "ld-linux-x86-64.so.2"])
      copyFileSync(join("/lib/x86_64-linux-gnu", l), join(rd, "lib/x86_64-linux-gnu", l));
    run(["ln", "-s", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", join(rd, "lib64/ld-linux-x86-64.so.2")]);
    const zst = join(work, "rootfs.cpio.zst");
    cpio(rd, zst, ["zstd", "-19", "-T0", "-c"]);
    figs.push({
      name: "alternative: everything in a zstd initramfs",
      value: (await bootOurs(bz, disk, zst)).ms,
      unit: "ms",
      baseline: { name: "uncompressed erofs (chosen)", value: o },
    });
    figs.push({ name: "size: that zstd initramfs", value: statSync(zst).size, unit: "bytes" });
    figs.push({ name: "size: lz4hc erofs AAOS-SYS", value: statSync(lz).size, unit: "bytes" });
  }

  const allocated = (p: string) => Number(run(["du", "-B1", p]).toString().split("\t")[0]);
  figs.push({ name: "size: kernel binary (bun build --compile)", value: statSync(bin).size, unit: "bytes" });
  figs.push({
    name: "size: Linux bzImage (EFI stub, built-in command line; its embedded initramfs is the kernel default /dev/console list: the system is on AAOS-SYS)",
    value: statSync(bz).size,
    unit: "bytes",
  });
  figs.push({
    name: "size: AAOS-SYS erofs (stage0 + binary + 5 glibc files)",
    value: statSync(sys).size,
    unit: "bytes",
  });
  figs.push({ name: "size: disk image out/aaos.img", value: statSync(img).size, unit: "bytes" });
  figs.push({ name: "size: disk image, allocated (sparse)", value: allocated(img), unit: "bytes" });
  cleanupDisks();
  rmSync(work, { recursive: true, force: true });
  return figs;
}
