// Run aaosctl as a person's shell would: a separate process, its own stdin,
// stdout and stderr, its exit code.
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
export const MAIN = join(ROOT, "cli/main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  stdin?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

function cliEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const base = {
    ...process.env,
    AAOS_SOCKET: undefined,
    AAOS_SERIAL: undefined,
    AAOS_TTY: undefined,
    AAOS_WAIT: undefined,
    NO_COLOR: undefined,
    FORCE_COLOR: undefined,
    ...extra,
  };
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  return env;
}

export async function aaosctl(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    stdin: opts.stdin !== undefined ? new Blob([opts.stdin]) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: cliEnv(opts.env),
    cwd: ROOT,
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** a long-running aaosctl (run, invoke waiting for approval, --follow) whose output we watch */
export class CliProcess {
  stdout = "";
  stderr = "";
  readonly exited: Promise<number>;
  private proc: ReturnType<typeof Bun.spawn>;
  private waiters = new Set<() => void>();

  constructor(args: string[], opts: CliOptions = {}) {
    this.proc = Bun.spawn([process.execPath, MAIN, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: cliEnv(opts.env),
      cwd: ROOT,
    });
    void this.pump(this.proc.stdout as ReadableStream<Uint8Array>, "stdout");
    void this.pump(this.proc.stderr as ReadableStream<Uint8Array>, "stderr");
    this.exited = this.proc.exited;
  }

  private async pump(stream: ReadableStream<Uint8Array>, which: "stdout" | "stderr") {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      this[which] += dec.decode(chunk, { stream: true });
      for (const w of [...this.waiters]) w();
    }
  }

  async waitFor(what: string | RegExp, timeoutMs = 10_000): Promise<void> {
    const seen = () => {
      const all = this.stdout + this.stderr;
      return typeof what === "string" ? all.includes(what) : what.test(all);
    };
    if (seen()) return;
    await new Promise<void>((res, rej) => {
      const check = () => {
        if (!seen()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        res();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        rej(new Error(`aaosctl never printed ${String(what)}; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  signal(sig: NodeJS.Signals = "SIGINT"): void {
    this.proc.kill(sig);
  }
}
