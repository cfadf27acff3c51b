// tool.invoke echo round trips per second over the kernel's unix socket,
// beside a bare Bun newline-JSON echo server driven by the same client in
// the same run; its latency (p50, p99) one call at a time beside the same
// server's; and the kernel's resident memory with 1,000 idle agents
// beside the same kernel with none.
import { closeSync, fdatasync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RpcClient } from "../cli/client.ts";
import { startKernel } from "../test/host/harness.ts";
import type { Figure } from "./figure.ts";

const TOTAL = 20_000;
const IN_FLIGHT = 64;

async function roundTrips(call: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 500; i++) await call(); // warm up
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (sent < TOTAL) {
        sent++;
        await call();
      }
    }),
  );
  return TOTAL / ((performance.now() - t0) / 1000);
}

const LATENCY_CALLS = 5_000;

/** p50 and p99 of one call at a time, in µs */
async function latency(call: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 500; i++) await call(); // warm up
  const us = new Float64Array(LATENCY_CALLS);
  for (let i = 0; i < LATENCY_CALLS; i++) {
    const t0 = performance.now();
    await call();
    us[i] = (performance.now() - t0) * 1000;
  }
  us.sort();
  const at = (q: number) => us[Math.min(LATENCY_CALLS - 1, Math.floor(q * LATENCY_CALLS))]!;
  return { p50: at(0.5), p99: at(0.99) };
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/** a bare newline-JSON server: each complete line handed to onLine with a way to answer it */
function lineServer(path: string, onLine: (line: string, reply: (text: string) => void) => void) {
  return Bun.listen<{ buf: string }>({
    unix: path,
    socket: {
      open(s) {
        s.data = { buf: "" };
      },
      data(s, d) {
        s.data.buf += d.toString();
        // answers given while the lines are read leave in one write; later ones alone
        let out: string | null = "";
        let nl;
        while ((nl = s.data.buf.indexOf("\n")) >= 0) {
          const line = s.data.buf.slice(0, nl);
          s.data.buf = s.data.buf.slice(nl + 1);
          onLine(line, (text) => (out === null ? void s.write(text) : void (out += text)));
        }
        if (out) s.write(out);
        out = null;
      },
    },
  });
}

const echoReply = (line: string) => {
  const req = JSON.parse(line);
  return JSON.stringify({ jsonrpc: "2.0", id: req.id, result: { output: req.params.input } }) + "\n";
};

function bareEchoServer(path: string) {
  return lineServer(path, (line, reply) => reply(echoReply(line)));
}

/**
 * The bare server made durable: each line's record written and fdatasync'd
 * (one at a time, in arrival order) before its reply. At 1 in flight this is
 * the floor any audited call sits on, on this disk.
 */
function bareDurableEchoServer(path: string, file: string) {
  const fd = openSync(file, "a");
  let chain: Promise<void> = Promise.resolve();
  const server = lineServer(path, (line, reply) => {
    const text = echoReply(line);
    chain = chain.then(
      () =>
        new Promise<void>((resolve) => {
          writeSync(fd, line + "\n");
          fdatasync(fd, () => {
            reply(text);
            resolve();
          });
        }),
    );
  });
  return {
    stop() {
      server.stop(true);
      closeSync(fd);
    },
  };
}

/** user + system CPU time of a process, all threads (fdatasync's kernel time included) */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0);
}

export async function benchRpc(): Promise<Figure[]> {
  const k = await startKernel({ manifests: { echoer: "name: echoer\nmodel: m\ncapabilities: [echo]\n" } });
  const dir = mkdtempSync(join(tmpdir(), "aaos-bench-"));
  const bare = bareEchoServer(join(dir, "bare.sock"));
  try {
    const { agent_id } = await k.client.call("agent.spawn", { name: "echoer" });
    const kernelCall = () => k.client.call("tool.invoke", { agent_id, tool: "echo", input: { message: "ping" } });
    const cpu0 = cpuSeconds(k.proc.pid);
    const kernelRate = await roundTrips(kernelCall);
    const cpuPerCall = ((cpuSeconds(k.proc.pid) - cpu0) / TOTAL) * 1e6;
    const bareClient = await RpcClient.unix(join(dir, "bare.sock"));
    const bareCall = () => bareClient.call("tool.invoke", { agent_id, tool: "echo", input: { message: "ping" } });
    const bareRate = await roundTrips(bareCall);
    const kernelLatency = await latency(kernelCall);
    const bareLatency = await latency(bareCall);
    bareClient.close();
    const durable = bareDurableEchoServer(join(dir, "durable.sock"), join(k.dataDir, "bare-durable.jsonl"));
    const durableClient = await RpcClient.unix(join(dir, "durable.sock"));
    const durableLatency = await latency(() =>
      durableClient.call("tool.invoke", { agent_id, tool: "echo", input: { message: "ping" } }),
    );
    durableClient.close();
    durable.stop();

    // memory: the same kernel process, before and after 1,000 idle agents
    const k2 = await startKernel({
      manifests: { idle: 'name: idle\nmodel: m\ncapabilities: [echo, "file_read: /srv/*"]\n' },
    });
    await k2.client.call("system.ping");
    Bun.gc?.(true);
    await Bun.sleep(500);
    const rss0 = rssKiB(k2.proc.pid);
    for (let i = 0; i < 1000; i += 50)
      await Promise.all(Array.from({ length: 50 }, () => k2.client.call("agent.spawn", { name: "idle" })));
    await Bun.sleep(500);
    const rss1000 = rssKiB(k2.proc.pid);
    await k2.stop();
    rmSync(k2.dir, { recursive: true, force: true });

    return [
      {
        name: "tool.invoke echo over unix socket (64 in flight, audited + fdatasync)",
        value: Math.round(kernelRate),
        unit: "calls/s",
        baseline: { name: "bare Bun newline-JSON echo server", value: Math.round(bareRate) },
      },
      // what the rate costs the kernel, less sensitive than the rate to what else the host runs
      { name: "kernel CPU per tool.invoke echo (64 in flight)", value: Math.round(cpuPerCall * 10) / 10, unit: "µs" },
      ...(["p50", "p99"] as const).flatMap((q) => [
        {
          name: `tool.invoke echo latency ${q} (1 in flight, audited + fdatasync)`,
          value: round1(kernelLatency[q]),
          unit: "µs",
          baseline: { name: `bare Bun newline-JSON echo server ${q}`, value: round1(bareLatency[q]) },
        },
        // the same call beside the floor durability sets on this disk: one write + fdatasync per call
        {
          name: `tool.invoke echo latency ${q} (1 in flight, audited + fdatasync)`,
          value: round1(kernelLatency[q]),
          unit: "µs",
          baseline: {
            name: `bare echo server, one write + fdatasync per call, ${q}`,
            value: round1(durableLatency[q]),
          },
        },
      ]),
      {
        name: "kernel RSS with 1,000 idle agents",
        value: Math.round(rss1000 / 1024),
        unit: "MiB",
        baseline: { name: "same kernel, no agents", value: Math.round(rss0 / 1024) },
      },
      { name: "RSS per idle agent", value: Math.round(((rss1000 - rss0) / 1000) * 10) / 10, unit: "KiB" },
    ];
  } finally {
    bare.stop(true);
    await k.stop();
    rmSync(k.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("JSON-RPC and memory", await benchRpc());
}
