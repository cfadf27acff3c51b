// The RPC line on virtio-console (aaos.rpc=hvc0), static addressing from
// kernel.yaml, and the machine's own buttons: ctrl-alt-del is a clean reboot
// (CAD off → SIGINT to PID 1), the ACPI power button a clean poweroff.
import { statSync, truncateSync } from "node:fs";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startMessagesServer, type MessagesServer } from "../fixtures/messages-server.ts";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { cleanupDisks, imageArtifacts, makeDisk } from "../../qemu/disk.ts";

let server: MessagesServer;
let vm: VM | null = null;

beforeAll(async () => {
  server = await startMessagesServer({ port: 0, hostname: "127.0.0.1" });
});
afterAll(async () => {
  vm?.kill();
  await server?.stop();
  cleanupDisks();
});

test("hvc0 + static network; ctrl-alt-del reboots cleanly; the power button powers off", async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  const disk = makeDisk({
    "kernel.yaml": `network:
  mode: static
  address: 10.0.2.15/24
  gateway: 10.0.2.2
  dns: 10.0.2.3
inference:
  providers:
    anthropic:
      base_url: http://10.0.2.100:8080
      api_key_file: secrets/key
`,
    "secrets/key": "k\n",
    "manifests/talker.yaml": "name: talker\nmodel: claude-haiku-4-5-20251001\n",
  });
  vm = await bootVM({
    image: disk,
    kernel: a.bzImage,
    rpc: "hvc0",
    guestfwd: [{ guestAddr: "10.0.2.100", guestPort: 8080, hostPort: server.port }],
  });
  const first = await vm.waitForReady();

  // static addressing reaches the host's Messages API through guestfwd
  server.script([{ text: "hello from the fixture" }]);
  const { agent_id } = await vm.call("agent.spawn", { name: "talker" });
  const run = await vm.call("agent.run", { agent_id, message: "hi" });
  expect(run.response).toBe("hello from the fixture");

  // ctrl-alt-del: a clean reboot (the first boot's system.stop is in the audit log)
  await vm.qmp("send-key", {
    keys: [
      { type: "qcode", data: "ctrl" },
      { type: "qcode", data: "alt" },
      { type: "qcode", data: "delete" },
    ],
  });
  const second = await vm.waitForReady();
  expect(second.params.boot_id).not.toBe(first.params.boot_id);
  const stops = await vm.call("audit.query", { kind: "system.stop", limit: 10 });
  expect(stops.events.map((e: any) => e.boot_id)).toContain(first.params.boot_id);
  expect((await vm.call("audit.verify")).ok).toBe(true);

  // the ACPI power button: a clean poweroff, QEMU exits by itself
  await vm.qmp("system_powerdown");
  expect(await vm.waitExit(120_000)).toBe(0);
  vm = null;
}, 600_000);

/** the partition table as sfdisk reads it, and what it says about it */
function sfdisk(disk: string, ...args: string[]): string {
  const r = Bun.spawnSync(["sfdisk", ...args, disk], { stderr: "pipe" });
  return r.stdout.toString() + r.stderr.toString();
}

// The same boot has a disk whose last partition is not AAOS-DATA (one was
// added after it, in room made at the end): the data disk is not grown, the
// boot says why and goes on, and the table is left as it was.
test("aaos.rpc names a device the machine lacks: PID 1 falls back to ttyS0 and stays reachable", async () => {
  const a = imageArtifacts();
  const disk = makeDisk({ "kernel.yaml": "network:\n  mode: none\n" });
  truncateSync(disk, statSync(disk).size + (64 << 20));
  const add = Bun.spawnSync(["sfdisk", "-q", "-a", disk], {
    stdin: Buffer.from("name=EXTRA,size=16M\n"),
    stderr: "pipe",
  });
  expect(add.exitCode).toBe(0);
  const table = sfdisk(disk, "-J");
  expect(JSON.parse(table).partitiontable.partitions.at(-1).name).toBe("EXTRA");
  const v = await bootVM({ image: disk, kernel: a.bzImage, append: "aaos.rpc=hvc0", noNetwork: true });
  try {
    await v.waitForReady();
    expect((await v.call("system.ping")).pong).toBe(true);
    const boot = (await v.call("system.info")).boot;
    expect(boot.data).toMatchObject({ mounted: true, persistent: true });
    expect(boot.data.grow).toEqual({
      status: "skipped",
      reason: "the last partition is EXTRA, not AAOS-DATA",
      done: [],
      disk: "/dev/vda",
      disk_bytes: statSync(disk).size,
      partition_bytes_before: 64 << 20,
      fs_bytes_before: expect.any(Number),
    });
    expect(await v.powerOff(120_000)).toBe(0);
    expect(sfdisk(disk, "-J")).toBe(table);
  } finally {
    v.kill();
  }
}, 600_000);
