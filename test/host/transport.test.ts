// Transports under a peer that half-closes or never reads, on a real kernel:
// every reply reaches a peer that ended its input (unix shutdown(SHUT_WR),
// `echo … | socat`, stdin EOF), and a peer that does not read its replies is
// paused (then, if its replies pile up anyway, dropped) while the kernel's
// memory stays bounded and other clients are served.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  closeSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { spawn } from "node:child_process";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { cleanup, startKernel, type RunningKernel } from "./harness.ts";

setDefaultTimeout(30_000);

const ROOT = resolve(import.meta.dir, "../..");
const hasSocat = Bun.which("socat") !== null;
const MiB = 1024 * 1024;

/** the kernel's resident memory, in MiB */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

async function until(cond: () => boolean, what: string, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

const req = (id: number, method: string, params: object = {}) =>
  JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n";
/** requests whose replies take a few event-loop turns (an audit write) or none (a ping) */
const mixed = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    i % 2
      ? req(i, "system.ping")
      : req(i, "agent.spawn", { manifest: `name: h${i}\nmodel: m\ncapabilities: [echo]\n` }),
  ).join("");

/** the number of `connection closed` debug lines in the kernel log */
const closedConnections = (k: RunningKernel) =>
  k
    .logText()
    .split("\n")
    .filter((l) => l.includes('"connection closed"')).length;

let k: RunningKernel;
beforeAll(async () => {
  k = await startKernel();
});
afterAll(async () => {
  await k.stop();
  cleanup(k);
});

describe("a peer that ends its input gets every reply", () => {
  test("unix: 200 requests, then shutdown(SHUT_WR): 200 replies, then our EOF", async () => {
    const N = 200;
    const ids = await new Promise<number[]>((resolve, reject) => {
      const sock = connect({ path: k.socket, allowHalfOpen: true });
      const got: number[] = [];
      let buf = "";
      const timer = setTimeout(() => reject(new Error(`no EOF from the kernel; ${got.length}/${N} replies`)), 10_000);
      sock.on("data", (d) => {
        buf += d.toString();
        for (let nl; (nl = buf.indexOf("\n")) >= 0; buf = buf.slice(nl + 1)) {
          const msg = JSON.parse(buf.slice(0, nl));
          if ("id" in msg) got.push(msg.id);
        }
      });
      sock.on("end", () => {
        clearTimeout(timer);
        sock.destroy();
        resolve(got);
      });
      sock.on("error", reject);
      sock.on("connect", () => sock.end(mixed(N)));
    });
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  test("unix: a last line without its newline is answered at EOF", async () => {
    const out = await new Promise<string>((resolve) => {
      const sock = connect({ path: k.socket, allowHalfOpen: true });
      let text = "";
      sock.on("data", (d) => (text += d));
      sock.on("end", () => resolve(text));
      sock.on("connect", () => sock.end('{"jsonrpc":"2.0","id":"tail","method":"system.ping"}'));
    });
    expect(out).toContain('"id":"tail","result":{"pong":true');
  });

  test.skipIf(!hasSocat)("the one-liner: echo … | socat -t30 - UNIX-CONNECT:SOCK", async () => {
    const oneLiner = (line: string) => {
      const p = Bun.spawnSync(["bash", "-c", `echo '${line}' | socat -t30 - UNIX-CONNECT:${k.socket}`], {
        stdout: "pipe",
        stderr: "pipe",
        timeout: 20_000,
      });
      expect(p.exitCode, p.stderr.toString()).toBe(0);
      return p.stdout
        .toString()
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    };
    const spawn = oneLiner(
      '{"jsonrpc":"2.0","id":1,"method":"agent.spawn","params":{"manifest":"name: greeter\\nmodel: claude-haiku-4-5-20251001\\n"}}',
    );
    expect(spawn[0]).toMatchObject({ method: "system.ready" });
    expect(spawn[1]).toMatchObject({ id: 1, result: { agent_id: expect.stringMatching(/^ag-/), name: "greeter" } });
    expect(spawn).toHaveLength(2);
    // docs/api.md's own one-liner. No inference provider in this kernel: the run fails, and the failure still arrives
    const doc = readFileSync(join(ROOT, "docs/api.md"), "utf8");
    const line =
      /```sh\necho '(\{.*"agent.spawn_and_run".*\})' \\\n {2}\| socat -t30 - UNIX-CONNECT:"\$SOCK"\n```/.exec(doc);
    expect(line, "the socat one-liner in docs/api.md").not.toBe(null);
    const run = oneLiner(line![1]!);
    expect(run[0]).toMatchObject({ method: "system.ready" });
    expect(run.at(-1)).toMatchObject({ id: 1, error: { code: -32006 } });
  });

  test("stdio: stdin EOF after 200 requests: 200 replies on stdout", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aaos-stdio-"));
    mkdirSync(join(dir, "config"));
    const p = Bun.spawn(
      [
        process.execPath,
        join(ROOT, "kernel/main.ts"),
        "--config",
        join(dir, "config"),
        "--data",
        join(dir, "data"),
        "--listen",
        "stdio",
      ],
      { stdin: "pipe", stdout: "pipe", stderr: "pipe" },
    );
    try {
      p.stdin.write(mixed(200));
      await p.stdin.end();
      const ids = new Set<number>();
      let buf = "";
      const reader = p.stdout.getReader();
      const deadline = setTimeout(() => reader.cancel(), 10_000);
      while (ids.size < 200) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += Buffer.from(value).toString();
        for (let nl; (nl = buf.indexOf("\n")) >= 0; buf = buf.slice(nl + 1)) {
          const msg = JSON.parse(buf.slice(0, nl));
          if (typeof msg.id === "number") ids.add(msg.id);
        }
      }
      clearTimeout(deadline);
      expect(ids.size).toBe(200);
    } finally {
      p.kill("SIGTERM");
      await p.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a peer that does not read its replies", () => {
  /** connect a client that never reads; it writes `line` as fast as the kernel takes it */
  async function flooder(line: string, path = k.socket) {
    const sock: Socket = connect(path);
    await new Promise((r) => sock.on("connect", r));
    sock.pause(); // never read
    const chunk = Buffer.from(line.repeat(1000));
    let closed = false;
    sock.on("close", () => (closed = true));
    sock.on("error", () => {});
    const pump = setInterval(() => {
      // keep a few MiB in our own send queue: the kernel reads as fast as it wants.
      // At most 64 writes a tick: a socket the kernel dropped reports writableLength 0
      for (let i = 0; i < 64 && !closed && sock.writable && sock.writableLength < 4 * MiB; i++) sock.write(chunk);
    }, 2);
    return {
      sock,
      get closed() {
        return closed;
      },
      stop() {
        clearInterval(pump);
        sock.destroy();
      },
    };
  }

  test("unix: memory stays bounded, the peer is paused, another client is served", async () => {
    await k.client.call("system.ping");
    const base = rssMiB(k.proc.pid);
    const closedBefore = closedConnections(k);
    // a ping's reply is about as large as the request: the output cap, not the in-flight one, is what holds
    const f = await flooder(req(1, "system.ping"));
    let peak = base;
    let pings = 0;
    for (const end = Date.now() + 5000; Date.now() < end;) {
      await Bun.sleep(50);
      peak = Math.max(peak, rssMiB(k.proc.pid));
      const pong = await k.client.call("system.ping", {}, { timeoutMs: 2000 });
      if (pong.pong) pings++;
    }
    // the kernel stopped reading: what we wrote waits in our send queue (before: it grew without bound in the kernel)
    expect(f.sock.writableLength).toBeGreaterThan(1 * MiB);
    expect(f.closed).toBe(false);
    expect(pings).toBeGreaterThan(10);
    expect(peak - base).toBeLessThan(100);
    console.log(`kernel RSS under a non-reading client: ${base.toFixed(0)} MiB at rest, ${peak.toFixed(0)} MiB peak`);
    f.stop();
    await until(() => closedConnections(k) > closedBefore, "the kernel to close the flooder's connection");
    expect((await k.client.call("system.ping")).pong).toBe(true);
  });

  test("unix: large replies that pile up anyway drop the peer, with a warning", async () => {
    // ~360 KiB per reply: 256 in flight would be ~90 MiB, past the 32 MiB hard cap
    await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        k.client.call("agent.spawn", { manifest: `name: big${i}\nmodel: m\ncapabilities: [echo]\n` }),
      ),
    );
    const one = await k.client.call("audit.query", { limit: 1000 });
    expect(JSON.stringify(one).length).toBeGreaterThan(200_000);
    const f = await flooder(req(1, "audit.query", { limit: 1000 }));
    await until(() => f.closed, "the kernel to drop the peer", 15_000);
    f.stop();
    expect(k.logText()).toContain("peer does not read its replies; dropping it");
    const warning = k
      .logText()
      .split("\n")
      .find((l) => l.includes("dropping it"))!;
    expect(JSON.parse(warning)).toMatchObject({
      transport: "unix",
      conn: expect.any(Number),
      unsent_bytes: expect.any(Number),
      limit: 32 * MiB,
    });
    expect((await k.client.call("system.ping")).pong).toBe(true);
    expect(k.proc.exitCode).toBe(null);
  });

  test("kernel.yaml rpc.max_pending_output_bytes sets the caps", async () => {
    const small = await startKernel({ kernelYaml: "rpc:\n  max_pending_output_bytes: 65536\n  max_in_flight: 200\n" });
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) => small.client.call("agent.spawn", { manifest: `name: s${i}\nmodel: m\n` })),
      );
      // 200 replies of ~8 KiB in flight: far past 4 × 64 KiB, while the peer is already behind
      const f = await flooder(req(1, "audit.query", { limit: 20 }), small.socket);
      await until(() => f.closed, "the kernel to drop the peer", 10_000);
      f.stop();
      const warning = small
        .logText()
        .split("\n")
        .find((l) => l.includes("dropping it"));
      expect(JSON.parse(warning!)).toMatchObject({ limit: 4 * 65536 });
      expect((await small.client.call("system.ping")).pong).toBe(true);
    } finally {
      await small.stop();
      cleanup(small);
    }
  });

  test("stdio: a parent that never reads stdout is paused; the kernel does not grow", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aaos-stdio-"));
    mkdirSync(join(dir, "config"));
    const p = spawn(
      process.execPath,
      [join(ROOT, "kernel/main.ts"), "--config", join(dir, "config"), "--data", join(dir, "data"), "--listen", "stdio"],
      { stdio: ["pipe", "pipe", "ignore"] },
    );
    try {
      await new Promise((r) => p.stdout!.once("data", r)); // system.ready: booted
      p.stdout!.pause(); // and never read again
      const base = rssMiB(p.pid!);
      const chunk = Buffer.from(req(1, "system.ping").repeat(1000));
      let peak = base;
      // Bun's child stdin does not show writableLength: count the bytes whose write has not completed
      let waiting = 0;
      p.stdin!.on("error", () => {});
      for (const end = Date.now() + 4000; Date.now() < end;) {
        for (let i = 0; i < 64 && p.stdin!.writable && waiting < 4 * MiB; i++) {
          waiting += chunk.length;
          p.stdin!.write(chunk, () => (waiting -= chunk.length));
        }
        peak = Math.max(peak, rssMiB(p.pid!));
        await Bun.sleep(20);
      }
      // the kernel stopped reading stdin: what we wrote waits on our side
      expect(waiting).toBeGreaterThan(1 * MiB);
      expect(peak - base).toBeLessThan(100);
      console.log(
        `stdio kernel RSS under a non-reading parent: ${base.toFixed(0)} MiB at rest, ${peak.toFixed(0)} MiB peak`,
      );
    } finally {
      p.kill("SIGKILL");
      await new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r(null) : p.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.skipIf(!hasSocat)(
    "tty: an operator end that is never read: the kernel stops at the cap and serves its socket",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "aaos-tty-"));
      const kernelEnd = join(dir, "ttyS0");
      const operatorEnd = join(dir, "ttyUSB0");
      const ptys = Bun.spawn(["socat", `PTY,link=${kernelEnd},raw,echo=0`, `PTY,link=${operatorEnd},raw,echo=0`], {
        stderr: "ignore",
      });
      let tk: RunningKernel | undefined;
      let fd = -1;
      try {
        await until(() => existsSync(kernelEnd) && existsSync(operatorEnd), "socat's ptys");
        tk = await startKernel({
          command: [process.execPath, join(ROOT, "kernel/main.ts"), "--listen", `tty:${kernelEnd}`],
        });
        const base = rssMiB(tk.proc.pid);
        fd = openSync(operatorEnd, "r+");
        const line = createWriteStream("", { fd, autoClose: false });
        line.on("error", () => {});
        const chunk = Buffer.from(req(1, "system.ping").repeat(1000));
        let waiting = 0;
        let peak = base;
        for (const end = Date.now() + 3000; Date.now() < end;) {
          while (waiting < MiB) {
            waiting += chunk.length;
            line.write(chunk, () => (waiting -= chunk.length));
          }
          await Bun.sleep(50);
          peak = Math.max(peak, rssMiB(tk.proc.pid));
        }
        expect(waiting).toBeGreaterThan(0); // the line is full: the kernel stopped reading it
        expect(peak - base).toBeLessThan(100);
        expect((await tk.client.call("system.ping", {}, { timeoutMs: 2000 })).pong).toBe(true);
        console.log(`tty kernel RSS under an unread line: ${base.toFixed(0)} MiB at rest, ${peak.toFixed(0)} MiB peak`);
      } finally {
        ptys.kill();
        if (tk) {
          await tk.stop();
          cleanup(tk);
        }
        if (fd >= 0) closeSync(fd);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
