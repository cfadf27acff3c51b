// aaos-kernel: argv → boot the subsystems → serve.
//
// host mode:  aaos-kernel --config DIR --data DIR --listen unix:PATH|stdio|tty:/dev/X [--listen …]
// init mode:  PID 1 inside the image (or --init): init/ mounts the disks and
//             names the RPC tty; everything else is the same code.
//
// Invariant: once serving, nothing a peer sends and no handler's error ends
// the process. Uncaught errors are logged and audited; the kernel goes on.
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import pino, { type Logger } from "pino";
import pkg from "../package.json" with { type: "json" };
import { AuditLog, REDACTED } from "./audit/index.ts";
import { loadKernelConfig, KernelConfigSchema, type KernelConfig } from "./config.ts";
import { Kernel } from "./kernel.ts";
import { createInference, InferenceConfigSchema } from "./llm/index.ts";
import { keyFile } from "./llm/router.ts";
import { listen, methodTable, parseListen, RpcServer, type Listener, type ListenSpec } from "./rpc/index.ts";

export const VERSION: string = pkg.version;

const USAGE = `usage: aaos-kernel --config DIR --data DIR --listen SPEC [--listen SPEC]… [--log-file PATH] [--log-level LEVEL]
       aaos-kernel --init      (PID 1 in the appliance; implied when the pid is 1)
  SPEC: unix:PATH | stdio | tty:/dev/NAME[@BAUD]`;

interface Args {
  mode: "host" | "init";
  configDir: string;
  dataDir: string;
  listen: ListenSpec[];
  logFile?: string;
  logLevel?: string;
}

function parseArgv(argv: string[]): Args | { exit: number; message: string } {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: {
        config: { type: "string" },
        data: { type: "string" },
        listen: { type: "string", multiple: true },
        "log-file": { type: "string" },
        "log-level": { type: "string" },
        init: { type: "boolean" },
        version: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (e) {
    return { exit: 2, message: `${(e as Error).message}\n${USAGE}` };
  }
  if (v.help) return { exit: 0, message: USAGE };
  if (v.version) return { exit: 0, message: VERSION };
  const mode = v.init || process.pid === 1 ? "init" : "host";
  if (mode === "host") {
    const missing = ["config", "data", "listen"].filter((k) => v[k as "config"] === undefined);
    if (missing.length) return { exit: 2, message: `missing --${missing.join(", --")}\n${USAGE}` };
  }
  let listen: ListenSpec[] = [];
  try {
    listen = (v.listen ?? []).map(parseListen);
  } catch (e) {
    return { exit: 2, message: (e as Error).message };
  }
  return {
    mode,
    configDir: resolve(v.config ?? "/config"),
    dataDir: resolve(v.data ?? "/data"),
    listen,
    logFile: v["log-file"],
    logLevel: v["log-level"],
  };
}

function makeLogger(level: string, file?: string): Logger {
  const dest = file ? pino.destination({ dest: file, mkdir: true, sync: false }) : pino.destination({ dest: 2, sync: false });
  // a full or failing disk must not take the kernel down through its own log
  dest.on("error", () => {});
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: ["api_key", "apiKey", "*.api_key", "*.apiKey", "headers.authorization", 'headers["x-api-key"]', "*.headers.authorization", '*.headers["x-api-key"]'], censor: REDACTED },
    },
    dest,
  );
}

export async function boot(args: Args): Promise<{ kernel: Kernel; listeners: Listener[]; stop(): Promise<void> }> {
  const bootId = randomUUID();
  const startedAt = Date.now();
  let log = makeLogger(args.logLevel ?? "info", args.logFile);
  let configDir = args.configDir;
  let dataDir = args.dataDir;
  let listenSpecs = args.listen;
  let initEnv: import("../init/index.ts").InitEnvironment | null = null;

  if (args.mode === "init") {
    const { enterInitMode } = await import("../init/index.ts");
    initEnv = await enterInitMode(log);
    configDir = initEnv.configDir;
    dataDir = initEnv.dataDir;
    // the console is the RPC line: logs go to the data partition, never onto it
    log = makeLogger(args.logLevel ?? "info", args.logFile ?? join(dataDir, "logs", "kernel.log"));
    if (!listenSpecs.length) listenSpecs = [{ kind: "tty", device: initEnv.rpcDevice }];
  }

  let config: KernelConfig;
  try {
    config = loadKernelConfig(configDir);
  } catch (e) {
    if (args.mode === "host") throw e;
    log.error({ err: e }, "kernel.yaml is invalid; booting with defaults");
    config = KernelConfigSchema.parse({});
  }
  if (config.log.level !== "info" && !args.logLevel) log.level = config.log.level;

  mkdirSync(dataDir, { recursive: true });
  // the agents' own area (everything else under --data is kernel-private)
  try {
    mkdirSync(join(dataDir, "files"), { recursive: true });
  } catch (err) {
    log.error({ err }, "cannot create the agents' files directory");
  }
  const audit = await AuditLog.open(join(dataDir, "audit"));
  const logFiles = [args.logFile ?? (args.mode === "init" ? join(dataDir, "logs", "kernel.log") : undefined)].filter((f): f is string => !!f).map((f) => resolve(f));
  let server: RpcServer | null = null;
  const kernel = new Kernel({
    config,
    configDir,
    dataDir,
    audit,
    log,
    onApprovalRequested: (info) => server?.broadcast("approval.requested", info),
    keyFiles: configuredKeyFiles(config, configDir),
    logFiles,
  });

  kernel.setInference(loadInference(config, kernel, audit, log, configDir));

  guardProcess(kernel, log);
  // a full data disk boots degraded: reads answer, changes get a clear error
  // (the audit log says why), and the leftovers are recovered at a later boot
  await kernel.approvals.recover().catch((err) => log.error({ err }, "could not record the approvals a previous run left pending; kept for the next boot"));
  await kernel
    .audit({ kind: "system.boot", agent_id: null, version: VERSION, boot_id: bootId, mode: args.mode, pid: process.pid, boot: initEnv?.bootReport })
    .catch((err) => log.error({ err }, "could not record system.boot: running degraded"));

  let listeners: Listener[] = [];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const l of listeners) l.close();
    for (const a of kernel.procs.all()) if (a.state !== "stopped") await kernel.stop(a.id).catch(() => {});
    await kernel.audit({ kind: "system.stop", agent_id: null, boot_id: bootId }).catch(() => {});
    await audit.close();
    log.flush?.();
  };
  const shutdown = (action: "poweroff" | "reboot") => {
    void (async () => {
      await stop().catch((err) => log.error({ err }, "error while stopping"));
      if (initEnv) await initEnv.shutdown(action);
      else process.exit(0);
    })();
  };

  server = new RpcServer(methodTable(kernel, audit, { version: VERSION, bootId, mode: args.mode, startedAt, shutdown, boot: initEnv?.bootReport }), {
    maxLineBytes: config.rpc.max_line_bytes,
    log,
    onOpen: (conn) => conn.notify("system.ready", { version: VERSION, boot_id: bootId }),
  });
  for (const spec of listenSpecs) listeners.push(await listen(spec, server, log));

  if (initEnv) initEnv.onShutdownRequest(shutdown);
  else for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => shutdown("poweroff"));

  log.info({ version: VERSION, boot_id: bootId, mode: args.mode, listen: listeners.map((l) => l.describe) }, "aaos kernel ready");
  return { kernel, listeners, stop };
}

/** the key files kernel.yaml names (kernel-private whatever a grant says) */
function configuredKeyFiles(config: KernelConfig, configDir: string): string[] {
  const p = config.inference?.providers;
  const files = [p?.anthropic?.api_key_file, ...(p?.openai_compatible ?? []).map((e) => e.api_key_file)];
  return files.filter((f): f is string => !!f).map((f) => resolve(keyFile(configDir, f)));
}

function loadInference(config: KernelConfig, kernel: Kernel, audit: AuditLog, log: Logger, configDir: string) {
  return createInference(config.inference ?? InferenceConfigSchema.parse({}), {
    services: kernel,
    audit: (e) => kernel.audit(e),
    registerSecret: (s) => audit.registerSecret(s),
    log,
    env: process.env,
    configDir,
  });
}

/** PID 1 never dies of a handler's error: log it, audit it, go on. */
function guardProcess(kernel: Kernel, log: Logger) {
  const report = (kind: string) => (err: unknown) => {
    log.error({ err }, kind);
    kernel.audit({ kind: "kernel.error", agent_id: null, error: String((err as Error)?.stack ?? err).slice(0, 2000) }).catch(() => {});
  };
  process.on("uncaughtException", report("uncaught exception"));
  process.on("unhandledRejection", report("unhandled rejection"));
}

if (import.meta.main) {
  const args = parseArgv(process.argv.slice(2));
  if ("exit" in args) {
    (args.exit === 0 ? console.log : console.error)(args.message);
    process.exit(args.exit);
  }
  boot(args).catch((e) => {
    console.error(`aaos-kernel: ${(e as Error)?.message ?? e}`);
    if (args.mode === "init") {
      // PID 1 must not exit: stay alive so the operator sees the console; the error is on it
      setInterval(() => {}, 1 << 30);
    } else process.exit(1);
  });
}
