// Load configs/aaos_x86_64_defconfig into a real Buildroot tree with our
// BR2_EXTERNAL and fail on every symbol Buildroot drops or changes.
//
//   BUILDROOT_DIR=/path/to/buildroot-2026.05.1 bun test test/buildroot
//
// Without BUILDROOT_DIR (or when it is not a Buildroot tree) the tests are
// skipped and say so. Needs host gcc and make (Buildroot builds its kconfig
// 'conf' tool); no network.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  DEFCONFIG,
  DEFCONFIG_NAME,
  EXTERNAL,
  compare,
  parseConfig,
  readDefconfig,
  symbols,
  unquote,
  type Symbols,
} from "./defconfig.ts";

const tree = process.env.BUILDROOT_DIR ? resolve(process.env.BUILDROOT_DIR) : "";
const isTree =
  !!tree &&
  existsSync(join(tree, "Makefile")) &&
  existsSync(join(tree, "Config.in")) &&
  existsSync(join(tree, "package/Makefile.in"));
const skipReason = !tree
  ? "BUILDROOT_DIR is not set: no Buildroot tree to load the defconfig into"
  : !isTree
    ? `BUILDROOT_DIR=${tree} is not a Buildroot tree (no Makefile, Config.in, package/Makefile.in)`
    : "";
if (skipReason)
  console.log(
    `test/buildroot/defconfig.test.ts: SKIPPED — ${skipReason}. Set BUILDROOT_DIR=/path/to/buildroot (a checkout of a Buildroot release) to run it.`,
  );

function brVersion(): string {
  const m = /^export BR2_VERSION := (\S+)/m.exec(readFileSync(join(tree, "Makefile"), "utf8"));
  return m?.[1] ?? "unknown";
}

/** make -C tree O=out BR2_EXTERNAL=... <targets>; throws with the output on failure */
function brMake(out: string, ...args: string[]): string {
  const r = Bun.spawnSync(["make", "-s", "-C", tree, `O=${out}`, `BR2_EXTERNAL=${EXTERNAL}`, ...args], {
    env: { ...process.env, BR2_DEFCONFIG: "", MAKEFLAGS: "", MAKELEVEL: "" },
  });
  const text = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`make ${args.join(" ")} failed (${r.exitCode}):\n${text}`);
  return text;
}

/** Kconfig complaints: unmet dependencies, unknown symbols, bad values */
function warnings(output: string): string[] {
  return output.split("\n").filter((l) => /warning|error|unmet|undefined|invalid/i.test(l));
}

describe.skipIf(!!skipReason)(`${DEFCONFIG_NAME} in a Buildroot tree (BUILDROOT_DIR)`, () => {
  const wanted = readDefconfig();
  const original = readFileSync(DEFCONFIG, "utf8");
  let work = "";
  let loaded: Symbols = new Map();
  let loadOutput = "";

  beforeAll(() => {
    console.log(`test/buildroot: Buildroot ${brVersion()} at ${tree}`);
    work = mkdtempSync(join(tmpdir(), "aaos-br-defconfig-"));
    loadOutput = brMake(join(work, "a"), DEFCONFIG_NAME);
    loaded = symbols(readFileSync(join(work, "a/.config"), "utf8"));
  }, 120_000);
  afterAll(() => work && rmSync(work, { recursive: true, force: true }));

  test("loads without Kconfig warnings", () => {
    expect(warnings(loadOutput)).toEqual([]);
  });

  test("every BR2_ line of the defconfig survives into .config unchanged", () => {
    expect(wanted.length).toBeGreaterThan(10);
    const bad = compare(wanted, loaded);
    if (bad.length) console.log(`dropped or changed by Buildroot ${brVersion()}:\n  ${bad.join("\n  ")}`);
    expect(bad).toEqual([]);
  });

  test("the external tree is the one in this repository", () => {
    expect(loaded.get("BR2_EXTERNAL_NAMES")).toBe('"AAOS"');
    expect(unquote(loaded.get("BR2_EXTERNAL_AAOS_PATH") ?? '""')).toBe(EXTERNAL);
  });

  test("what the appliance needs: x86_64, glibc, Linux 6.1 with 6.1 headers, no init, no BusyBox, no shell, erofs, host image tools", () => {
    const want: Record<string, string> = {
      BR2_x86_64: "y",
      BR2_TOOLCHAIN_USES_GLIBC: "y",
      BR2_TOOLCHAIN_HEADERS_AT_LEAST_6_1: "y",
      BR2_INIT_NONE: "y",
      BR2_SYSTEM_BIN_SH_NONE: "y",
      BR2_LINUX_KERNEL: "y",
      BR2_LINUX_KERNEL_BZIMAGE: "y",
      BR2_LINUX_KERNEL_ZSTD: "y",
      BR2_TARGET_ROOTFS_EROFS: "y",
      BR2_PACKAGE_HOST_GENIMAGE: "y",
      BR2_PACKAGE_HOST_DOSFSTOOLS: "y",
      BR2_PACKAGE_HOST_MTOOLS: "y",
      BR2_PACKAGE_HOST_E2FSPROGS: "y",
      BR2_PACKAGE_AAOS_KERNEL: "y",
    };
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, loaded.get(k) ?? "(absent)"]));
    expect(got).toEqual(want);
    for (const off of ["BR2_PACKAGE_BUSYBOX", "BR2_TOOLCHAIN_HEADERS_AT_LEAST_6_2", "BR2_STATIC_LIBS"]) {
      expect([undefined, "n"]).toContain(loaded.get(off));
    }
    expect(unquote(loaded.get("BR2_LINUX_KERNEL_VERSION") ?? '""')).toMatch(/^6\.1\.\d+$/);
  });

  test("savedefconfig keeps everything we asked for (round trip)", () => {
    const saved = join(work, "saved_defconfig");
    // BR2_DEFCONFIG points savedefconfig away from configs/: never overwrite ours
    brMake(join(work, "a"), "savedefconfig", `BR2_DEFCONFIG=${saved}`);
    expect(existsSync(saved)).toBe(true);
    const reload = join(work, "b");
    const out = brMake(reload, `BR2_DEFCONFIG=${saved}`, "defconfig");
    expect(warnings(out)).toEqual([]);
    const again = symbols(readFileSync(join(reload, ".config"), "utf8"));
    const bad = compare(wanted, again);
    expect(bad).toEqual([]);
    // and the whole configuration is the same
    const diff = [...loaded]
      .filter(([k, v]) => k !== "BR2_DEFCONFIG" && again.get(k) !== v)
      .map(([k, v]) => `${k}: ${v} -> ${again.get(k)}`);
    expect(diff).toEqual([]);
    // informational: lines of ours that merely restate Buildroot's default
    const minimal = new Set(parseConfig(readFileSync(saved, "utf8")).map((l) => l.text));
    const restated = wanted.filter((l) => !minimal.has(l.text)).map((l) => l.text);
    if (restated.length)
      console.log(
        `test/buildroot: defconfig lines equal to Buildroot's defaults (kept on purpose, checked all the same):\n  ${restated.join("\n  ")}`,
      );
  }, 120_000);

  test("the pinned kernel's hash in board/aaos/patches is Buildroot's own", () => {
    const version = unquote(loaded.get("BR2_LINUX_KERNEL_VERSION") ?? '""');
    const tarball = `linux-${version}.tar.xz`;
    const ours = readFileSync(join(EXTERNAL, "board/aaos/patches/linux/linux.hash"), "utf8")
      .split("\n")
      .find((l) => l.trim().endsWith(`  ${tarball}`));
    expect(ours).toBeDefined();
    const theirs = readdirSync(join(tree, "linux"), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .flatMap((d) => {
        const f = join(tree, "linux", d.name, "linux.hash");
        return existsSync(f) ? readFileSync(f, "utf8").split("\n") : [];
      })
      .find((l) => l.trim().endsWith(`  ${tarball}`));
    if (!theirs) {
      console.log(
        `test/buildroot: Buildroot ${brVersion()} has no hash for ${tarball}; ours cannot be cross-checked (verify it against kernel.org's sha256sums.asc)`,
      );
      return;
    }
    expect(ours!.trim().split(/\s+/)).toEqual(theirs.trim().split(/\s+/));
  });

  test("the check itself catches a dropped and a changed symbol", () => {
    // a copy of our external tree whose defconfig asks for an unknown symbol,
    // an option whose dependency is unmet on x86_64, and a changed value
    const copy = join(work, "external");
    cpSync(EXTERNAL, copy, { recursive: true });
    const broken = join(copy, "configs", DEFCONFIG_NAME);
    const text =
      readFileSync(broken, "utf8").replace(
        "BR2_LINUX_KERNEL_ZSTD=y",
        "BR2_LINUX_KERNEL_ZSTD=y\nBR2_LINUX_KERNEL_UIMAGE=y",
      ) + "BR2_AAOS_NO_SUCH_SYMBOL=y\nBR2_TARGET_ROOTFS_EROFS_LZ4HC_LEVEL=99\n";
    writeFileSync(broken, text);
    const out = join(work, "c");
    const r = Bun.spawnSync(["make", "-s", "-C", tree, `O=${out}`, `BR2_EXTERNAL=${copy}`, DEFCONFIG_NAME], {
      env: { ...process.env, MAKEFLAGS: "", MAKELEVEL: "" },
    });
    expect(r.exitCode).toBe(0);
    const bad = compare(parseConfig(text), symbols(readFileSync(join(out, ".config"), "utf8")));
    expect(bad.map((b) => b.split(":")[0])).toEqual([
      "BR2_LINUX_KERNEL_UIMAGE",
      "BR2_AAOS_NO_SUCH_SYMBOL",
      "BR2_TARGET_ROOTFS_EROFS_LZ4HC_LEVEL",
    ]);
  }, 120_000);

  test("loading did not touch configs/ (savedefconfig went elsewhere)", () => {
    expect(readFileSync(DEFCONFIG, "utf8")).toBe(original);
  });
});
