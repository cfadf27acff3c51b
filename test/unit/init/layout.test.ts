// The names that tie the build to the boot: the GPT partition names in
// image/genimage.cfg, the root= on the fragment's built-in command line, and
// the labels PID 1 looks for must agree (Buildroot shares these files).
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_LABEL, DATA_LABEL } from "../../../init/index.ts";

const root = join(import.meta.dir, "../../..");
const genimage = readFileSync(join(root, "image/genimage.cfg"), "utf8");
const fragment = readFileSync(join(root, "image/kernel.fragment"), "utf8");

test("genimage.cfg names the five partitions init and the kernel look for, the data partition last", () => {
  const names = [...genimage.matchAll(/^\s*partition\s+(\S+)\s*\{/gm)].map((m) => m[1]);
  expect(names).toEqual(["AAOS-BOOT", "AAOS-SYS-A", "AAOS-SYS-B", CONFIG_LABEL, DATA_LABEL]);
  // fixed sizes: an upgrade never moves AAOS-CFG or AAOS-DATA
  for (const p of ["AAOS-BOOT", "AAOS-SYS-A", "AAOS-SYS-B"])
    expect(genimage).toMatch(new RegExp(`partition ${p} \\{[^}]*size = \\d+M`, "s"));
  expect(genimage).toContain('partition-table-type = "gpt"');
  // the ESP type GUID, so firmware finds EFI/BOOT/BOOTX64.EFI
  expect(genimage).toMatch(/partition AAOS-BOOT \{[^}]*c12a7328-f81f-11d2-ba4b-00a0c93ec93b/s);
});

test("the built-in command line roots on slot A (a boot entry names its slot later) and names the RPC line", () => {
  const cmdline = fragment.match(/^CONFIG_CMDLINE="([^"]*)"/m)?.[1] ?? "";
  expect(cmdline.split(" ")).toEqual(
    expect.arrayContaining([
      "root=PARTLABEL=AAOS-SYS-A",
      "rootfstype=erofs",
      "aaos.rpc=ttyS0",
      "quiet",
      "init=/sbin/init",
    ]),
  );
  expect(fragment).toMatch(/^# CONFIG_MODULES is not set$/m);
  expect(fragment).toMatch(/^CONFIG_EFI_STUB=y$/m);
});
