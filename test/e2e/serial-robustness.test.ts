// Bad input on the serial line leaves PID 1 alive: garbage bytes, a 5 MiB
// line, a half-written message; the kernel answers afterwards and the line
// still carries JSON-RPC both ways at any length.
import { afterAll, expect, test } from "bun:test";
import { bootVM, type VM } from "../../qemu/harness.ts";
import { cleanupDisks, imageArtifacts, makeDisk } from "../../qemu/disk.ts";

let vm: VM | null = null;
afterAll(() => {
  vm?.kill();
  cleanupDisks();
});

test("garbage, a 5 MiB line and a half message do not kill PID 1", async () => {
  const a = imageArtifacts();
  if (a.missing.length) throw new Error(`missing ${a.missing.join(", ")}: run make image`);
  const disk = makeDisk({ "kernel.yaml": "network:\n  mode: none\n" });
  vm = await bootVM({ image: disk, kernel: a.bzImage, noNetwork: true });
  const ready = await vm.waitForReady();
  const bootId = ready.params.boot_id;

  // garbage: random bytes including NUL, ^C, ^D, ^Z, ^\ and invalid UTF-8
  const junk = new Uint8Array(4096);
  crypto.getRandomValues(junk);
  junk.set([0, 3, 4, 26, 28, 0xff, 0xfe, 0xc0], 0);
  vm.sendRaw(junk);
  vm.sendRaw("\n");
  expect((await vm.call("system.ping", {}, 60_000)).pong).toBe(true);

  // a 5 MiB line: refused (over the 1 MiB cap) with id null, the line survives
  vm.sendRaw(
    '{"jsonrpc":"2.0","id":"big","method":"system.ping","params":{"pad":"' + "x".repeat(5 * 1024 * 1024) + '"}}\n',
  );
  expect((await vm.call("system.ping", {}, 300_000)).pong).toBe(true);

  // a half-written message, then a newline: one parse error, nothing else
  vm.sendRaw('{"jsonrpc":"2.0","id":77,"method":"system.pi');
  await Bun.sleep(500);
  vm.sendRaw("\n");
  expect((await vm.call("system.ping", {}, 60_000)).pong).toBe(true);

  // long lines work both ways (far beyond the 4095 bytes of a cooked tty): echo 60 KiB
  const agent = await vm.call("agent.spawn", {
    manifest: 'name: echoer\nmodel: none\ncapabilities:\n  - "tool: echo"\n',
  });
  const big = "y".repeat(60 * 1024);
  const echo = await vm.call(
    "tool.invoke",
    { agent_id: agent.agent_id, tool: "echo", input: { message: big } },
    300_000,
  );
  expect(JSON.stringify(echo)).toContain(big);

  // still the same boot: PID 1 never restarted
  const info = await vm.call("system.info");
  expect(info.boot_id).toBe(bootId);
  // a disk as mkdisk built it, not enlarged: AAOS-DATA already fills it and the boot wrote nothing
  expect(info.boot.data.grow).toMatchObject({
    status: "full",
    done: [],
    partition_bytes_before: 64 << 20,
    partition_bytes_after: 64 << 20,
  });
  expect(await vm.powerOff(120_000)).toBe(0);
  vm = null;
}, 900_000);
