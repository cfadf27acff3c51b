// make run's console (qemu/attach.ts, what qemu/run.ts runs once QEMU is up)
// through a real pseudo-terminal, without QEMU: the "VM" is a real host-mode
// kernel behind the serial-line stand-in (test/cli/serial-line.ts), which
// plays QEMU's chardev socket. Ctrl-] detaches and leaves it running;
// `aaosctl --serial SOCKET console` re-attaches; Ctrl-D there powers it off.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { MAIN } from "./run-cli.ts";
import { SerialLine } from "./serial-line.ts";
import { Keys, Terminal } from "./terminal.ts";

setDefaultTimeout(60_000);

const DRIVER = join(import.meta.dir, "make-run-console.ts");
let k: RunningKernel;
let line: SerialLine;
let home: string;
let serial: string;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), "aaos-attach-"));
  k = await startKernel({
    manifests: { idle: "name: idle\nmodel: claude-haiku-4-5-20251001\ncapabilities: [echo]\n" },
  });
  serial = join(home, "serial.sock");
  line = new SerialLine({ socket: serial, kernel: k.socket }).start();
});
afterAll(async () => {
  line?.stop();
  await k?.stop();
  if (k) cleanup(k);
  rmSync(home, { recursive: true, force: true });
});

const env = () => ({ AAOSCTL_HISTORY: join(home, "history") });

describe("make run's console", () => {
  let agentId = "";

  test("Ctrl-] detaches: the console leaves, the VM keeps running, and the way back is printed", async () => {
    const t = new Terminal([process.execPath, DRIVER, serial, String(k.proc.pid)], { env: env() });
    try {
      await t.waitFor("Ctrl-D or exit leaves");
      await t.waitFor(() => t.screen.cursorLine() === "aaos>");
      t.line("spawn idle");
      agentId = /spawned idle (ag-[0-9a-f]+)/.exec(await t.waitFor(/spawned idle ag-[0-9a-f]+/))![1]!;
      t.type(Keys.ctrlRightBracket);
      const text = await t.waitFor("make-run-console: detached; the VM is running");
      expect(text).toContain("detached: the kernel carries on");
      expect(text).toMatch(/aaos: detached; the VM keeps running \(QEMU pid \d+\)/);
      expect(text).toContain(`aaos: re-attach:  aaosctl --serial ${serial} console`);
      expect(text).not.toContain("powering the machine off");
      expect(await t.exited).toBe(0);
    } finally {
      t.kill();
    }
    expect(k.proc.exitCode).toBeNull();
    expect((await k.client.call("system.ping")).pong).toBe(true);
  });

  test("re-attached with aaosctl --serial SOCKET console, the VM is as it was left", async () => {
    const t = new Terminal([process.execPath, MAIN, "--serial", serial, "console"], { env: env() });
    try {
      await t.waitFor(() => t.screen.cursorLine() === "aaos>");
      t.line("ps");
      await t.waitFor(new RegExp(`${agentId}\\s+idle\\s+ready`));
      // a plain console leaves the kernel alone whichever way it is left
      t.type(Keys.ctrlD);
      expect(await t.exited).toBe(0);
    } finally {
      t.kill();
    }
    expect(k.proc.exitCode).toBeNull();
  });

  test("Ctrl-D in make run's console powers the VM off", async () => {
    const t = new Terminal([process.execPath, DRIVER, serial, String(k.proc.pid)], { env: env() });
    try {
      await t.waitFor(() => t.screen.cursorLine() === "aaos>");
      t.type(Keys.ctrlD);
      await t.waitFor("aaos: console closed; powering the machine off (Ctrl-] in the console detaches instead)");
      await t.waitFor("make-run-console: off; the VM is off");
      expect(await t.exited).toBe(0);
    } finally {
      t.kill();
    }
    expect(await Promise.race([k.proc.exited, Bun.sleep(10_000).then(() => "still running")])).not.toBe(
      "still running",
    );
  });
});
