// Always runs (no Buildroot tree needed): the Buildroot path and the offline
// path (image/) must use the very same kernel config fragment and genimage
// layout — referenced by path from buildroot/, never copied into it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { EXTERNAL, REPO, expandExternal, readDefconfig, unquote } from "./defconfig.ts";

const FRAGMENT = join(REPO, "image", "kernel.fragment");
const GENIMAGE = join(REPO, "image", "genimage.cfg");

function value(symbol: string): string {
  const l = readDefconfig().find((x) => x.symbol === symbol);
  if (!l) throw new Error(`${symbol} missing from the defconfig`);
  return unquote(l.value);
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.isFile() ? [p] : [];
  });
}

/** the same file, not a copy: same device and inode after resolving links */
function sameFile(a: string, b: string): boolean {
  const sa = statSync(realpathSync(a));
  const sb = statSync(realpathSync(b));
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

describe("buildroot/ shares image/'s files by reference", () => {
  test("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES is image/kernel.fragment and nothing else", () => {
    const files = value("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES").split(/\s+/).filter(Boolean);
    expect(files).toEqual(["$(BR2_EXTERNAL_AAOS_PATH)/../image/kernel.fragment"]);
    const path = expandExternal(files[0]!);
    expect(existsSync(path)).toBe(true);
    expect(sameFile(path, FRAGMENT)).toBe(true);
  });

  test("the post-image script gets image/genimage.cfg (BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS -c)", () => {
    const args = value("BR2_ROOTFS_POST_IMAGE_SCRIPT_ARGS").split(/\s+/).filter(Boolean);
    expect(args).toEqual(["-c", "$(BR2_EXTERNAL_AAOS_PATH)/../image/genimage.cfg"]);
    const path = expandExternal(args[1]!);
    if (!existsSync(path))
      throw new Error(`${relative(REPO, path)} does not exist: the Buildroot post-image step has no layout to run`);
    expect(sameFile(path, GENIMAGE)).toBe(true);
  });

  test("the post-image script assembles the disk with image/'s assembler and the layout it is given", () => {
    const script = value("BR2_ROOTFS_POST_IMAGE_SCRIPT");
    expect(script).toBe("$(BR2_EXTERNAL_AAOS_PATH)/board/aaos/post-image.sh");
    const text = readFileSync(expandExternal(script), "utf8");
    expect(text).toContain("$repo/image/mkdisk.sh");
    // any genimage layout the script names is image/genimage.cfg
    for (const m of text.match(/[\w./$-]*genimage[\w.-]*\.cfg/g) ?? [])
      expect(m).toMatch(/(^|\/)image\/genimage\.cfg$/);
  });

  test("buildroot/ holds no copy of the fragment or the layout", () => {
    const shared = [FRAGMENT, GENIMAGE].filter(existsSync).map((p) => ({ p, text: readFileSync(p, "utf8") }));
    const copies: string[] = [];
    for (const f of walk(EXTERNAL)) {
      const name = basename(f);
      if (/\.fragment$|^genimage.*\.cfg$|^linux.*\.config$/.test(name)) copies.push(`${relative(REPO, f)} (name)`);
      const text = readFileSync(f, "utf8");
      for (const s of shared)
        if (text === s.text) copies.push(`${relative(REPO, f)} (same content as ${relative(REPO, s.p)})`);
    }
    expect(copies).toEqual([]);
  });

  test("post-build writes /etc exactly as image/mkrootfs.sh does", () => {
    const offline = readFileSync(join(REPO, "image/mkrootfs.sh"), "utf8");
    const ours = readFileSync(join(EXTERNAL, "board/aaos/post-build.sh"), "utf8");
    const etcLines = offline
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^(printf|ln) .*"\$root\/etc\//.test(l));
    expect(etcLines.length).toBeGreaterThan(0);
    const missing = etcLines.filter((l) => !ours.split("\n").some((o) => o.trim() === l));
    expect(missing).toEqual([]);
  });

  test("the offline path (image/) uses the same two files", () => {
    // every file of image/ but the shared ones: scripts and make rules
    const users = walk(join(REPO, "image")).filter((f) => f !== FRAGMENT && f !== GENIMAGE);
    const text = users.map((f) => readFileSync(f, "utf8")).join("\n");
    expect(text).toContain("kernel.fragment");
    if (!existsSync(GENIMAGE)) throw new Error("image/genimage.cfg does not exist yet");
    expect(text).toContain("genimage.cfg");
  });
});

// Run board/aaos/post-image.sh as Buildroot would, on stand-in inputs (a small
// bzImage, an erofs of a few files): it must produce the four-partition GPT of
// image/genimage.cfg, and refuse a layout that is a copy.
const TOOLS = ["genimage", "mkfs.vfat", "mmd", "mcopy", "mkfs.ext4", "mkfs.erofs"];
const missingTools = TOOLS.filter((t) => !Bun.which(t, { PATH: `${process.env.PATH}:/usr/sbin:/sbin` }));
if (missingTools.length)
  console.log(`test/buildroot: skipping the post-image run: ${missingTools.join(", ")} not installed (make apt-deps)`);

function gptNames(img: string): string[] {
  const fd = readFileSync(img, { flag: "r" }).subarray(0, 34 * 512);
  const hdr = fd.subarray(512, 1024);
  if (hdr.toString("latin1", 0, 8) !== "EFI PART") throw new Error("no GPT header");
  const entries = Number(hdr.readBigUInt64LE(72));
  const count = hdr.readUInt32LE(80);
  const size = hdr.readUInt32LE(84);
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const e = fd.subarray(entries * 512 + i * size, entries * 512 + (i + 1) * size);
    if (e.subarray(0, 16).every((b) => b === 0)) continue;
    names.push(e.toString("utf16le", 56, 128).replace(/\0.*$/s, ""));
  }
  return names;
}

describe.skipIf(missingTools.length > 0)("board/aaos/post-image.sh", () => {
  const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "aaos-br-post-image-"));
    mkdirSync(join(dir, "images"));
    mkdirSync(join(dir, "root/sbin"), { recursive: true });
    writeFileSync(join(dir, "root/sbin/init"), "stand-in");
    writeFileSync(join(dir, "images/bzImage"), Buffer.alloc(1 << 20, 0x5a));
    const r = Bun.spawnSync(
      ["mkfs.erofs", "--quiet", "--all-root", "-T0", join(dir, "images/rootfs.erofs"), join(dir, "root")],
      { env },
    );
    if (r.exitCode !== 0) throw new Error(`mkfs.erofs: ${r.stderr}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const script = join(EXTERNAL, "board/aaos/post-image.sh");
  test("builds the GPT of image/genimage.cfg from Buildroot's bzImage and rootfs.erofs", () => {
    const cfg = expandExternal("$(BR2_EXTERNAL_AAOS_PATH)/../image/genimage.cfg");
    const r = Bun.spawnSync([script, join(dir, "images"), "-c", cfg], { env: { ...env, BUILD_DIR: dir } });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    expect(gptNames(join(dir, "images/aaos.img")).sort()).toEqual([
      "AAOS-BOOT",
      "AAOS-CFG",
      "AAOS-DATA",
      "AAOS-SYS-A",
      "AAOS-SYS-B",
    ]);
  }, 60_000);

  test("refuses a copy of the layout", () => {
    const copy = join(dir, "genimage.cfg");
    writeFileSync(copy, readFileSync(GENIMAGE));
    const r = Bun.spawnSync([script, join(dir, "images"), "-c", copy], { env: { ...env, BUILD_DIR: dir } });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.toString()).toContain("is not image/genimage.cfg");
  }, 60_000);
});

// Buildroot rewrites some kernel options after the fragment (the compression
// it is told by BR2_LINUX_KERNEL_<FORMAT>) and builds the rootfs itself: the
// choices the fragment and image/ make must be the ones the defconfig makes.
describe("the defconfig agrees with image/'s choices", () => {
  const fragment = () => readFileSync(FRAGMENT, "utf8");
  const br = () => new Map(readDefconfig().map((l) => [l.symbol, l.value]));

  test("kernel compression: the fragment's CONFIG_KERNEL_<X> is BR2_LINUX_KERNEL_<X> (Buildroot forces its own)", () => {
    const set = [...fragment().matchAll(/^CONFIG_KERNEL_(GZIP|LZ4|LZMA|LZO|XZ|ZSTD|BZIP2|UNCOMPRESSED)=y$/gm)].map(
      (m) => m[1]!,
    );
    const chosen = [...br()]
      .filter(([k, v]) => /^BR2_LINUX_KERNEL_(GZIP|LZ4|LZMA|LZO|XZ|ZSTD|UNCOMPRESSED)$/.test(k) && v === "y")
      .map(([k]) => k.replace("BR2_LINUX_KERNEL_", ""));
    // Buildroot's default is gzip when the defconfig names none
    expect(chosen.length ? chosen : ["GZIP"]).toEqual(set.length ? set : ["GZIP"]);
  });

  test("modules: the fragment has none and nothing in the defconfig asks for them", () => {
    expect(fragment()).toMatch(/^# CONFIG_MODULES is not set$/m);
    expect(br().get("BR2_LINUX_NEEDS_MODULES")).toBeUndefined();
  });

  test("the root the kernel command line names is the one Buildroot builds", () => {
    const cmdline = /^CONFIG_CMDLINE="(.*)"$/m.exec(fragment())?.[1] ?? "";
    const words = new Map(cmdline.split(/\s+/).map((w) => [w.split("=")[0]!, w.split("=").slice(1).join("=")]));
    expect(words.get("rootfstype")).toBe("erofs");
    expect(br().get("BR2_TARGET_ROOTFS_EROFS")).toBe("y");
    expect(words.get("root")).toBe("PARTLABEL=AAOS-SYS-A");
    expect(readFileSync(GENIMAGE, "utf8")).toMatch(/partition AAOS-SYS-A \{[^}]*image = "sys\.erofs"/);
    // the package installs stage0 where init= points, the kernel where stage0 execs it
    const mk = readFileSync(join(EXTERNAL, "package/aaos-kernel/aaos-kernel.mk"), "utf8");
    expect(mk).toContain(`$(TARGET_DIR)${words.get("init")}`);
    const stage0 = readFileSync(join(REPO, "init/stage0.c"), "utf8");
    const kernelPath = /#define AAOS_KERNEL_PATH "([^"]+)"/.exec(stage0)?.[1];
    expect(kernelPath).toBeDefined();
    expect(mk).toContain(`$(TARGET_DIR)${kernelPath}`);
  });

  test("erofs compression: the defconfig's is image/mkrootfs.sh's default (uncompressed)", () => {
    const mkrootfs = readFileSync(join(REPO, "image/mkrootfs.sh"), "utf8");
    const offlineDefault =
      /AAOS_EROFS_COMPRESS: "" \(default, uncompressed/.test(mkrootfs) &&
      /\[ -n "\$\{AAOS_EROFS_COMPRESS:-\}" \]/.test(mkrootfs);
    expect(offlineDefault).toBe(true);
    expect(br().get("BR2_TARGET_ROOTFS_EROFS_NONE")).toBe("y");
  });
});
