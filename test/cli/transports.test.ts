// How aaosctl reaches a kernel other than by its unix socket: a real serial
// line (--tty: the kernel speaks on one end of a pty pair, aaosctl opens the
// other), QEMU's serial chardev socket (--serial: socat plays QEMU, serving a
// unix socket wired to the kernel's tty), and the failures: a line with
// console noise and no system.ready, a line where nothing answers, a socket
// that appears late (serial-line.ts plays the line, in front of a real
// kernel).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "../host/harness.ts";
import { aaosctl } from "./run-cli.ts";
import { BOOT_NOISE, LINE_NOISE, SerialLine } from "./serial-line.ts";

setDefaultTimeout(30_000);

const MODEL = "claude-haiku-4-5-20251001";
const ROOT = resolve(import.meta.dir, "../..");
const hasSocat = Bun.which("socat") !== null;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaosctl-tr-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function until(cond: () => boolean, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

describe.skipIf(!hasSocat)("a real kernel on a serial line", () => {
  let k: RunningKernel;
  let ptys: ReturnType<typeof Bun.spawn>;
  let qemu: ReturnType<typeof Bun.spawn>;
  const kernelEnd = () => join(dir, "ttyS0");
  const operatorEnd = () => join(dir, "ttyUSB0");
  const serialSock = () => join(dir, "serial.sock");

  beforeAll(async () => {
    // a null-modem cable: two ptys joined back to back
    ptys = Bun.spawn(["socat", `PTY,link=${kernelEnd()},raw,echo=0`, `PTY,link=${operatorEnd()},raw,echo=0`], {
      stderr: "ignore",
    });
    await until(() => existsSync(kernelEnd()) && existsSync(operatorEnd()), "socat's ptys");
    k = await startKernel({
      command: [process.execPath, join(ROOT, "kernel/main.ts"), "--listen", `tty:${kernelEnd()}`],
      manifests: { echoer: `name: echoer\nmodel: ${MODEL}\ncapabilities: [echo]\n` },
    });
  });
  afterAll(async () => {
    qemu?.kill();
    await k?.stop();
    if (k) cleanup(k);
    ptys?.kill();
  });

  test("--tty: raw mode on the device, a ping for readiness, then verbs", async () => {
    const info = await aaosctl(["--tty", operatorEnd(), "--baud", "115200", "--wait", "5", "info", "--json"]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ boot_id: k.ready.boot_id, mode: "host" });
    const spawned = await aaosctl(["--tty", operatorEnd(), "spawn", "echoer"]);
    expect(spawned.code).toBe(0);
    expect(spawned.stdout).toContain("spawned echoer ag-");
    const ps = await aaosctl(["--tty", operatorEnd(), "ps"]);
    expect(ps.stdout).toMatch(/^ag-[0-9a-f]+\s+echoer\s+ready/m);
  });

  test("--serial: QEMU's chardev socket in front of the line", async () => {
    // what `-chardev socket,path=serial.sock,server=on,wait=off` does, for one client at a time
    qemu = Bun.spawn(["socat", `UNIX-LISTEN:${serialSock()},fork`, `${operatorEnd()},raw,echo=0`], {
      stderr: "ignore",
    });
    await until(() => existsSync(serialSock()), "the serial socket");
    const r = await aaosctl(["--serial", serialSock(), "--wait", "5", "tools", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).tools.map((t: { name: string }) => t.name)).toContain("echo");
  });
});

describe("serial lines without a kernel's welcome", () => {
  let k: RunningKernel;
  beforeAll(async () => {
    k = await startKernel({ manifests: { echoer: `name: echoer\nmodel: ${MODEL}\n` } });
  });
  afterAll(async () => {
    await k?.stop();
    if (k) cleanup(k);
  });

  test("the stand-in line: boot noise, no system.ready, noise before each of the kernel's lines", async () => {
    const sock = join(dir, "raw.sock");
    const line = new SerialLine({ socket: sock, kernel: k.socket }).start();
    let got = "";
    const conn = await Bun.connect({ unix: sock, socket: { data: (_s, d) => void (got += d.toString()) } });
    try {
      conn.write(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "system.ping" }) + "\n");
      await until(() => got.includes('"id":1'), "the kernel's answer");
      expect(got.startsWith(BOOT_NOISE)).toBe(true);
      expect(got).not.toContain("system.ready");
      const answer = got.split("\n").find((l) => l.includes('"id":1'))!;
      expect(JSON.parse(answer).result.pong).toBe(true);
      expect(got).toContain(LINE_NOISE + answer);
    } finally {
      conn.end();
      line.stop();
    }
  });

  test("console noise and no system.ready: a ping finds the kernel, noise is ignored", async () => {
    const sock = join(dir, "noisy.sock");
    const line = new SerialLine({ socket: sock, kernel: k.socket }).start();
    try {
      const r = await aaosctl(["--serial", sock, "spawn", "echoer"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("spawned echoer ag-");
      const ps = await aaosctl(["--serial", sock, "ps", "--json"]);
      expect(JSON.parse(ps.stdout).agents).toHaveLength(1);
    } finally {
      line.stop();
    }
  });

  test("nothing answers on the line: exit 3 after --wait, naming what was tried", async () => {
    const sock = join(dir, "silent.sock");
    const line = new SerialLine({ socket: sock }).start();
    try {
      const t0 = Date.now();
      const r = await aaosctl(["--serial", sock, "--wait", "1.5", "ps"]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(`no answer from serial socket ${sock} within 1.5 s`);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
      const s = await aaosctl(["--socket", sock, "--wait", "1", "ps"]);
      expect(s.code).toBe(3);
      expect(s.stderr).toContain(`no answer from socket ${sock} within 1 s`);
    } finally {
      line.stop();
    }
  });

  test("a serial socket that appears while we wait (QEMU still starting) is used", async () => {
    const sock = join(dir, "late.sock");
    const pending = aaosctl(["--serial", sock, "--wait", "10", "ping"]);
    await Bun.sleep(800);
    const line = new SerialLine({ socket: sock, kernel: k.socket }).start();
    try {
      const r = await pending;
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^pong in/);
    } finally {
      line.stop();
    }
  });

  test("no serial socket at all within --wait: exit 3", async () => {
    const r = await aaosctl(["--serial", join(dir, "never.sock"), "--wait", "1", "ps"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("is the VM running?");
  });

  test("--tty on a device that is not there: exit 3", async () => {
    const r = await aaosctl(["--tty", join(dir, "ttyNONE"), "ps"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("cannot open");
  });
});
