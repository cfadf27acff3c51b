// A host-mode kernel with the dashboard's HTTP listener (--listen http:) beside
// its unix socket, and Debian's chromium driven headless by playwright-core
// (the browsers playwright downloads cannot be fetched here). The browser
// tests go through this.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { RpcClient } from "../../cli/client.ts";

const ROOT = resolve(import.meta.dir, "../..");
export const CHROMIUM = "/usr/bin/chromium";

/** a loopback port nobody listens on (bound on port 0, then closed) */
export function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

export interface DashboardKernel {
  dir: string;
  dataDir: string;
  socket: string;
  port: number;
  /** http://127.0.0.1:PORT */
  origin: string;
  client: RpcClient;
  tokens: { operator: string; viewer: string };
  proc: ReturnType<typeof Bun.spawn>;
  logText(): string;
  stop(): Promise<void>;
}

export async function startDashboardKernel(
  opts: { kernelYaml?: string; env?: Record<string, string | undefined> } = {},
): Promise<DashboardKernel> {
  const dir = mkdtempSync(join(tmpdir(), "aaos-web-"));
  const configDir = join(dir, "config");
  const dataDir = join(dir, "data");
  mkdirSync(join(configDir, "manifests"), { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  if (opts.kernelYaml !== undefined) writeFileSync(join(configDir, "kernel.yaml"), opts.kernelYaml);
  const socket = join(dir, "k.sock");
  const logFile = join(dir, "k.log");
  const port = freePort();
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
      process.execPath,
      join(ROOT, "kernel/main.ts"),
      "--config",
      configDir,
      "--data",
      dataDir,
      "--listen",
      `unix:${socket}`,
      "--listen",
      `http:127.0.0.1:${port}`,
      "--log-file",
      logFile,
    ],
    { env, stdout: "ignore", stderr: "pipe" },
  );
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  const fail = async (why: string) => {
    proc.kill("SIGKILL");
    const err = await new Response(proc.stderr as ReadableStream).text().catch(() => "");
    throw new Error(`${why}: ${err}`);
  };
  for (;;) {
    if (proc.exitCode !== null) await fail(`kernel exited with ${proc.exitCode}`);
    if (existsSync(socket)) {
      const up = await fetch(`${origin}/session`).then(
        (r) => r.status === 401,
        () => false,
      );
      if (up) break;
    }
    if (Date.now() > deadline) await fail("kernel did not open its socket and its HTTP listener within 20 s");
    await Bun.sleep(25);
  }
  let client: RpcClient | undefined;
  for (let attempt = 0; !client; attempt++) {
    try {
      client = await RpcClient.unix(socket);
    } catch (e) {
      if (attempt >= 100) throw e;
      await Bun.sleep(20);
    }
  }
  const web = join(dataDir, "state", "web");
  const tokens = {
    operator: readFileSync(join(web, "operator.token"), "utf8").trim(),
    viewer: readFileSync(join(web, "viewer.token"), "utf8").trim(),
  };
  const k: DashboardKernel = {
    dir,
    dataDir,
    socket,
    port,
    origin,
    client,
    tokens,
    proc,
    logText: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    async stop() {
      k.client.close();
      if (proc.exitCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await proc.exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return k;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
