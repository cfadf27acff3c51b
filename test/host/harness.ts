// Starts the kernel in host mode as a real process on a real unix socket
// and hands back a JSON-RPC client. Every host test goes through this.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { RpcClient } from "../../cli/client.ts";

const ROOT = resolve(import.meta.dir, "../..");

export interface KernelOptions {
  manifests?: Record<string, string>;
  kernelYaml?: string;
  env?: Record<string, string | undefined>;
  /** reuse the directories of an earlier kernel (restart tests) */
  dir?: string;
  /** command to run instead of `bun kernel/main.ts` (e.g. the compiled binary) */
  command?: string[];
  /** more --listen specs beside the unix socket (e.g. "http:127.0.0.1:0", the dashboard) */
  extraListen?: string[];
}

export interface RunningKernel {
  dir: string;
  configDir: string;
  dataDir: string;
  socket: string;
  client: RpcClient;
  ready: { version: string; boot_id: string };
  proc: ReturnType<typeof Bun.spawn>;
  connect(): Promise<{ client: RpcClient; ready: any }>;
  logText(): string;
  stop(): Promise<void>;
}

export async function startKernel(opts: KernelOptions = {}): Promise<RunningKernel> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "aaos-"));
  const configDir = join(dir, "config");
  const dataDir = join(dir, "data");
  mkdirSync(join(configDir, "manifests"), { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  for (const [name, text] of Object.entries(opts.manifests ?? {}))
    writeFileSync(join(configDir, "manifests", `${name}.yaml`), text);
  if (opts.kernelYaml !== undefined) writeFileSync(join(configDir, "kernel.yaml"), opts.kernelYaml);
  const socket = join(dir, "kernel.sock");
  const logFile = join(dir, "kernel.log");
  const cmd = opts.command ?? [process.execPath, join(ROOT, "kernel/main.ts")];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({
    ...process.env,
    ANTHROPIC_API_KEY: undefined,
    ANTHROPIC_BASE_URL: undefined,
    ...opts.env,
  }))
    if (v !== undefined) env[k] = v;
  const proc = Bun.spawn(
    [
      ...cmd,
      "--config",
      configDir,
      "--data",
      dataDir,
      "--listen",
      `unix:${socket}`,
      ...(opts.extraListen ?? []).flatMap((l) => ["--listen", l]),
      "--log-file",
      logFile,
      "--log-level",
      "debug",
    ],
    {
      env,
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const deadline = Date.now() + 20_000;
  while (!existsSync(socket)) {
    if (proc.exitCode !== null) {
      const err = await new Response(proc.stderr as ReadableStream).text();
      throw new Error(`kernel exited with ${proc.exitCode}: ${err}`);
    }
    if (Date.now() > deadline) throw new Error("kernel did not open its socket within 20 s");
    await Bun.sleep(20);
  }
  const connect = async () => {
    // the socket file appears at bind(), a moment before listen(): retry a refused connect
    let client: RpcClient;
    for (let attempt = 0; ; attempt++) {
      try {
        client = await RpcClient.unix(socket);
        break;
      } catch (e) {
        if (attempt >= 100 || proc.exitCode !== null) throw e;
        await Bun.sleep(20);
      }
    }
    const ready = await client.waitFor("system.ready", 5000).catch(() => null);
    return { client, ready };
  };
  const first = await connect();
  const k: RunningKernel = {
    dir,
    configDir,
    dataDir,
    socket,
    client: first.client,
    ready: first.ready,
    proc,
    connect,
    logText: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    async stop() {
      k.client.close();
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await proc.exited;
        clearTimeout(t);
      }
    },
  };
  return k;
}

export function cleanup(k: RunningKernel) {
  rmSync(k.dir, { recursive: true, force: true });
}

/** assert a promise rejects with a JSON-RPC error of this code; returns the error */
export async function rpcError(
  p: Promise<unknown>,
  code: number,
): Promise<{ code: number; message: string; data?: any }> {
  try {
    const v = await p;
    throw new Error(`expected error ${code}, got result ${JSON.stringify(v)}`);
  } catch (e: any) {
    if (e?.code !== code) throw new Error(`expected error ${code}, got ${e?.code}: ${e?.message}`);
    return e;
  }
}
