// The compiled kernel's resident memory at ready, idle, beside three compiled
// Bun programs built in the same run with the same flags (image/image.mk's
// AAOS_BUN_FLAGS): one that only stays alive, one with the kernel's four
// libraries loaded, and one using what the kernel cannot boot without
// (bench/idle/floor.ts: the lowest the kernel could be). Each program is
// started ROUNDS times, interleaved, and read SETTLE_MS after it is ready;
// the median is printed.
//
// The kernel boots as in the appliance, minus init: the image's kernel.yaml,
// its API key file present, the log at info in a file, one unix listener.
import { spawn } from "bun";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RpcClient } from "../cli/client.ts";
import type { Figure } from "./figure.ts";

const ROOT = resolve(import.meta.dir, "..");
const BUN = process.execPath;
/** as image/image.mk builds out/aaos-kernel: its AAOS_BUN_FLAGS default, or the caller's */
const FLAGS = (
  process.env.AAOS_BUN_FLAGS ??
  /^AAOS_BUN_FLAGS \?= *(.*)$/m.exec(readFileSync(join(ROOT, "image/image.mk"), "utf8"))?.[1] ??
  "--bytecode"
)
  .split(/\s+/)
  .filter(Boolean);
const ROUNDS = 3;
const SETTLE_MS = 1500;

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

async function compile(entry: string, out: string): Promise<void> {
  const p = spawn([BUN, "build", "--compile", ...FLAGS, join(ROOT, entry), "--outfile", out], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if ((await p.exited) !== 0) throw new Error(`bun build ${entry} failed: ${await new Response(p.stderr).text()}`);
}

/** a program that prints "ready" and idles: RSS SETTLE_MS after the line */
async function programRss(bin: string): Promise<number> {
  const p = spawn([bin], { stdout: "pipe", stderr: "ignore" });
  try {
    const reader = p.stdout.getReader();
    let text = "";
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${bin} exited before it was ready`);
      text += new TextDecoder().decode(value);
    }
    reader.releaseLock();
    await Bun.sleep(SETTLE_MS);
    return rssKiB(p.pid);
  } finally {
    p.kill("SIGKILL");
    await p.exited;
  }
}

/** the kernel, booted on a fresh data directory: RSS SETTLE_MS after system.ready and one ping */
async function kernelRss(bin: string, work: string, round: number): Promise<number> {
  const dir = join(work, `kernel-${round}`);
  const configDir = join(dir, "config");
  mkdirSync(join(configDir, "manifests"), { recursive: true });
  mkdirSync(join(configDir, "secrets"), { recursive: true });
  copyFileSync(join(ROOT, "image/config/kernel.yaml"), join(configDir, "kernel.yaml"));
  writeFileSync(join(configDir, "secrets/anthropic_api_key"), "sk-ant-bench-not-a-key\n");
  const socket = join(dir, "kernel.sock");
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("ANTHROPIC_") && !k.startsWith("BUN_")) env[k] = v;
  const p = spawn(
    [
      bin,
      "--config",
      configDir,
      "--data",
      join(dir, "data"),
      "--listen",
      `unix:${socket}`,
      "--log-file",
      join(dir, "kernel.log"),
    ],
    { env, stdout: "ignore", stderr: "pipe" },
  );
  let client: RpcClient | null = null;
  try {
    const deadline = Date.now() + 20_000;
    while (!client) {
      if (p.exitCode !== null)
        throw new Error(`kernel exited with ${p.exitCode}: ${await new Response(p.stderr).text()}`);
      if (Date.now() > deadline) throw new Error("kernel did not open its socket within 20 s");
      if (existsSync(socket)) client = await RpcClient.unix(socket).catch(() => null);
      if (!client) await Bun.sleep(20);
    }
    await client.waitFor("system.ready", 5000);
    await client.call("system.ping");
    await Bun.sleep(SETTLE_MS);
    return rssKiB(p.pid);
  } finally {
    client?.close();
    p.kill("SIGKILL");
    await p.exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

export async function benchMemory(): Promise<Figure[]> {
  const work = mkdtempSync(join(tmpdir(), "aaos-bench-memory-"));
  try {
    const bins = {
      bare: join(work, "bare"),
      libs: join(work, "libs"),
      floor: join(work, "floor"),
      kernel: join(work, "aaos-kernel"),
    };
    await compile("bench/idle/bare.ts", bins.bare);
    await compile("bench/idle/libs.ts", bins.libs);
    await compile("bench/idle/floor.ts", bins.floor);
    await compile("kernel/main.ts", bins.kernel);
    const rss = { bare: [] as number[], libs: [] as number[], floor: [] as number[], kernel: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      rss.bare.push(await programRss(bins.bare));
      rss.libs.push(await programRss(bins.libs));
      rss.floor.push(await programRss(bins.floor));
      rss.kernel.push(await kernelRss(bins.kernel, work, round));
    }
    const bare = median(rss.bare);
    const libs = median(rss.libs);
    const floor = median(rss.floor);
    const kernel = median(rss.kernel);
    const flags = FLAGS.join(" ") || "no flags";
    return [
      {
        name: `compiled kernel idle RSS at ready (${flags}; goal: ratio ≤ 1.4)`,
        value: mib(kernel),
        unit: "MiB",
        baseline: { name: "bare compiled Bun program", value: mib(bare) },
        ratio: kernel / bare,
      },
      {
        name: "compiled kernel idle RSS at ready",
        value: mib(kernel),
        unit: "MiB",
        baseline: { name: "compiled Bun program with pino, zod, yaml, @anthropic-ai/sdk loaded", value: mib(libs) },
        ratio: kernel / libs,
      },
      {
        name: "compiled kernel idle RSS at ready",
        value: mib(kernel),
        unit: "MiB",
        baseline: {
          name: "compiled Bun program using only what boot needs (node:fs, crypto, net, bun:sqlite, zod, yaml, pino)",
          value: mib(floor),
        },
        ratio: kernel / floor,
      },
      {
        name: "that program's idle RSS (the kernel's floor)",
        value: mib(floor),
        unit: "MiB",
        baseline: { name: "bare compiled Bun program", value: mib(bare) },
        ratio: floor / bare,
      },
    ];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./figure.ts");
  printFigures("idle memory (compiled)", await benchMemory());
}
