// Finding the kernel: a host-mode unix socket (--socket), the unix socket
// QEMU serves for the VM's serial line (--serial), or a real serial device
// (--tty, --baud). Connecting is not enough: we wait until the kernel speaks.
//
// Ready means: a system.ready notification arrived (a socket transport sends
// one when it opens), or a system.ping was answered (a serial line sent its
// system.ready at boot, long before we came). Pings repeat, because bytes sent
// while the guest is still booting may be lost or eaten by a tty that is not
// yet in raw mode.
import { RpcClient, connectUnix, type ByteStream } from "./client.ts";
import { unreachable, usageError } from "./exit.ts";
import { CONFIG_HINT, contextEndpoint, currentEndpoint, type ContextEndpoint } from "./contexts.ts";

export type Target =
  { kind: "socket"; path: string } | { kind: "serial"; path: string } | { kind: "tty"; path: string; baud: number };

export interface TargetOptions {
  socket?: string;
  serial?: string;
  tty?: string;
  baud?: string;
  /** a context of the config file (cli/contexts.ts) */
  context?: string;
}

export const DEFAULT_BAUD = 115200;

/**
 * Which kernel: an explicit --socket/--serial/--tty, else --context NAME,
 * else AAOS_SOCKET / AAOS_SERIAL / AAOS_TTY, else the config file's
 * current-context.
 */
export function targetFrom(opts: TargetOptions, env: Record<string, string | undefined> = process.env): Target {
  const given = (["socket", "serial", "tty"] as const).filter((k) => opts[k] !== undefined);
  if (given.length > 1)
    throw usageError(`give only one of --socket, --serial, --tty (got ${given.map((g) => "--" + g).join(", ")})`);
  const baud = parseBaud(opts.baud ?? env.AAOS_BAUD);
  if (opts.socket !== undefined) return { kind: "socket", path: opts.socket };
  if (opts.serial !== undefined) return { kind: "serial", path: opts.serial };
  if (opts.tty !== undefined) return { kind: "tty", path: opts.tty, baud };
  if (opts.context !== undefined) return endpointTarget(contextEndpoint(opts.context, env), opts, env);
  if (env.AAOS_SOCKET) return { kind: "socket", path: env.AAOS_SOCKET };
  if (env.AAOS_SERIAL) return { kind: "serial", path: env.AAOS_SERIAL };
  if (env.AAOS_TTY) return { kind: "tty", path: env.AAOS_TTY, baud };
  const current = currentEndpoint(env);
  if (current) return endpointTarget(current.endpoint, opts, env);
  throw usageError(
    "which kernel? give --socket PATH (host mode), --serial PATH (QEMU's serial socket) or --tty DEVICE",
    `or --context NAME, or set AAOS_SOCKET, AAOS_SERIAL or AAOS_TTY (${CONFIG_HINT})`,
  );
}

/** a context's endpoint; --baud (or AAOS_BAUD) over the context's baud */
function endpointTarget(e: ContextEndpoint, opts: TargetOptions, env: Record<string, string | undefined>): Target {
  if ("socket" in e) return { kind: "socket", path: e.socket };
  if ("serial" in e) return { kind: "serial", path: e.serial };
  const text = opts.baud ?? (e.baud !== undefined ? String(e.baud) : env.AAOS_BAUD);
  return { kind: "tty", path: e.tty, baud: parseBaud(text) };
}

function parseBaud(text: string | undefined): number {
  if (text === undefined) return DEFAULT_BAUD;
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0)
    throw usageError(`--baud wants a positive whole number, not ${JSON.stringify(text)}`);
  return n;
}

export function describeTarget(t: Target): string {
  if (t.kind === "tty") return `${t.path} at ${t.baud} baud`;
  return `${t.kind === "socket" ? "socket" : "serial socket"} ${t.path}`;
}

export interface ReadyInfo {
  /** from system.ready, when it was seen */
  version?: string;
  boot_id?: string;
}

export interface Connection {
  client: RpcClient;
  target: Target;
  ready: ReadyInfo;
}

export interface ConnectOptions {
  /** how long to wait for the kernel to answer, in ms */
  waitMs: number;
  /** how often to repeat system.ping on a serial line, in ms */
  pingEveryMs?: number;
}

export async function connectTarget(target: Target, opts: ConnectOptions): Promise<Connection> {
  const deadline = Date.now() + opts.waitMs;
  const stream = await openStream(target, deadline);
  const client = new RpcClient(stream);
  try {
    const ready = await waitReady(client, target, deadline, opts);
    return { client, target, ready };
  } catch (e) {
    client.close();
    throw e;
  }
}

async function openStream(target: Target, deadline: number): Promise<ByteStream> {
  if (target.kind === "tty") {
    const { openTty } = await import("./tty.ts");
    return openTty(target.path, target.baud);
  }
  // QEMU creates its serial socket a moment after it starts: keep trying
  // until the deadline. A host kernel's socket either is there or is not.
  for (;;) {
    try {
      return await connectUnix(target.path, Math.max(100, deadline - Date.now()));
    } catch (e) {
      const msg = (e as Error).message;
      const retry = target.kind === "serial" && /ENOENT|ECONNREFUSED/.test(msg) && Date.now() + 200 < deadline;
      if (!retry) throw unreachable(msg, hintFor(target));
      await Bun.sleep(200);
    }
  }
}

function hintFor(target: Target): string {
  if (target.kind === "socket") return "is the kernel running? (bun kernel/main.ts --listen unix:PATH)";
  if (target.kind === "serial") return "is the VM running? (make run); a slow boot may need --wait 120";
  return "is the machine on and the cable in? check --baud";
}

function waitReady(client: RpcClient, target: Target, deadline: number, opts: ConnectOptions): Promise<ReadyInfo> {
  const pingEvery = opts.pingEveryMs ?? 1000;
  return new Promise<ReadyInfo>((resolve, reject) => {
    let settled = false;
    const cleanups: (() => void)[] = [];
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      for (const c of cleanups) c();
      fn();
    };
    cleanups.push(
      client.onNotification((n) => {
        if (n.method === "system.ready")
          settle(() => resolve({ version: n.params?.version, boot_id: n.params?.boot_id }));
      }),
    );
    cleanups.push(
      client.onClosed((err) =>
        settle(() =>
          reject(
            unreachable(
              `${describeTarget(target)} closed the connection${err ? `: ${err.message}` : ""} before the kernel answered`,
              hintFor(target),
            ),
          ),
        ),
      ),
    );
    const ping = () => {
      const left = deadline - Date.now();
      if (left <= 0 || settled) return;
      client
        .call("system.ping", {}, { timeoutMs: Math.min(left, Math.max(pingEvery, 200)) })
        .then((r) => {
          if (r && typeof r === "object" && "pong" in r) settle(() => resolve({}));
        })
        .catch(() => {});
    };
    ping();
    // Over a socket the kernel answers the first ping or says system.ready;
    // over a serial line the first bytes may be lost while the guest boots.
    if (target.kind !== "socket") {
      const timer = setInterval(ping, pingEvery);
      cleanups.push(() => clearInterval(timer));
    }
    const timer = setTimeout(
      () => {
        const secs = Math.round((opts.waitMs / 1000) * 10) / 10;
        const noise = client.noise.length ? ` (saw ${client.noise.length} line(s) that were not JSON-RPC)` : "";
        settle(() =>
          reject(unreachable(`no answer from ${describeTarget(target)} within ${secs} s${noise}`, hintFor(target))),
        );
      },
      Math.max(0, deadline - Date.now()),
    );
    cleanups.push(() => clearTimeout(timer));
  });
}
