// aaos-kernel: argv → boot the subsystems → serve.
//
// host mode:  aaos-kernel --config DIR --data DIR --listen unix:PATH|http:HOST:PORT|stdio|tty:/dev/X [--listen …]
// init mode:  PID 1 inside the image (or --init): init/ mounts the disks and
//             names the RPC tty, and brings up the network from the kernel's
//             parse of kernel.yaml; everything else is the same code.
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
import { loadKernelConfig, type KernelConfig } from "./config.ts";
import { Kernel } from "./kernel.ts";
import { createInference, InferenceConfigSchema } from "./llm/index.ts";
import { keyFile, summarizeInference } from "./llm/router.ts";
import { listen, methodTable, parseListen, RpcServer, type Listener, type ListenSpec } from "./rpc/index.ts";
import { viewerTable } from "./rpc/methods.ts";
import { parseHostPort } from "./rpc/transports.ts";
import { parseDuration } from "./manifest/index.ts";
import { systemStats } from "./sys/stats.ts";
import { logReader } from "./sys/logs.ts";
import type { Tokens } from "./web/auth.ts";
import { McpService } from "./mcp/server.ts";
import type { AgentServices } from "./services.ts";
import type { Upgrader } from "./sys/upgrade.ts";

// the boot report's modules and to-main (init/bootclock.ts): every import above has been evaluated
globalThis.__aaosMain ??= performance.now();

/** `make image AAOS_VERSION=…` defines it (bun build --define); bun run falls back to package.json's */
declare const AAOS_BUILD_VERSION: string | undefined;
export const VERSION: string = typeof AAOS_BUILD_VERSION === "string" ? AAOS_BUILD_VERSION : pkg.version;

const USAGE = `usage: aaos-kernel --config DIR --data DIR --listen SPEC [--listen SPEC]… [--log-file PATH] [--log-level LEVEL]
       aaos-kernel --init      (PID 1 in the appliance; implied when the pid is 1)
  SPEC: unix:PATH | http:HOST:PORT (the dashboard) | stdio | tty:/dev/NAME[@BAUD]`;

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
  const dest = file
    ? pino.destination({ dest: file, mkdir: true, sync: false })
    : pino.destination({ dest: 2, sync: false });
  // a full or failing disk must not take the kernel down through its own log
  dest.on("error", () => {});
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: [
          "api_key",
          "apiKey",
          "*.api_key",
          "*.apiKey",
          "headers.authorization",
          'headers["x-api-key"]',
          "*.headers.authorization",
          '*.headers["x-api-key"]',
        ],
        censor: REDACTED,
      },
    },
    dest,
  );
}

/**
 * The boot, in order: where things are (init mode mounts the disks), the one
 * parse of kernel.yaml, the log, init's second step, the data directory and
 * the audit log, the kernel, what a previous run left, then the server.
 */
export async function boot(args: Args): Promise<{ kernel: Kernel; listeners: Listener[]; stop(): Promise<void> }> {
  const bootId = randomUUID();
  const startedAt = Date.now();

  // init mode: signals, the RPC tty, /config and /data; until /data is there, problems go to the console
  const init =
    args.mode === "init"
      ? await (await import("../init/index.ts")).enterInitMode(makeLogger(args.logLevel ?? "info", args.logFile))
      : null;
  const configDir = init?.configDir ?? args.configDir;
  const dataDir = init?.dataDir ?? args.dataDir;
  const listenSpecs = args.listen.length || !init ? args.listen : [{ kind: "tty" as const, device: init.rpcDevice }];

  // host mode refuses a bad kernel.yaml; PID 1 boots on the defaults and reports it (system.info, system.boot)
  const { config, report: configReport } = loadKernelConfig(configDir, {
    onInvalid: args.mode === "init" ? "defaults" : "throw",
  });
  const logFile = kernelLogFile(args, config, dataDir);
  const log = makeLogger(args.logLevel ?? config.log.level, logFile);
  if (!configReport.valid) log.error({ error: configReport.error }, "kernel.yaml is invalid; booting with defaults");
  init?.mark("config");

  // init mode: the network from the same parse, the reaper, the power button
  await init?.finishBoot(config.network);

  mkdirSync(dataDir, { recursive: true });
  // the agents' own area (everything else under --data is kernel-private)
  try {
    mkdirSync(join(dataDir, "files"), { recursive: true });
  } catch (err) {
    log.error({ err }, "cannot create the agents' files directory");
  }
  const audit = await AuditLog.open(join(dataDir, "audit"));
  init?.mark("audit-open");
  const kernel = new Kernel({
    config,
    configDir,
    dataDir,
    audit,
    log,
    inference: (services) =>
      createInference(config.inference ?? InferenceConfigSchema.parse({}), {
        services,
        audit: (e) => services.audit(e),
        registerSecret: (s) => audit.registerSecret(s),
        log,
        env: process.env,
        configDir,
      }),
    keyFiles: configuredKeyFiles(config, configDir),
    logFiles: logFile === undefined ? [] : [logFile],
    mode: args.mode,
    version: VERSION,
  });
  guardProcess(kernel, log);

  // a full data disk boots degraded: reads answer, changes get a clear error
  // (the audit log says why), and the leftovers are recovered at a later boot
  await kernel
    .recover()
    .catch((err) =>
      log.error({ err }, "could not record the approvals a previous run left pending; kept for the next boot"),
    );
  await kernel
    .audit({
      kind: "system.boot",
      agent_id: null,
      version: VERSION,
      boot_id: bootId,
      mode: args.mode,
      pid: process.pid,
      config: configReport,
      boot: init?.bootReport,
    })
    .catch((err) => log.error({ err }, "could not record system.boot: running degraded"));
  init?.mark("kernel");
  // init mode: a step of the clock by SNTP (the first one usually came before the audit log was open)
  init?.onClockStep((step) => {
    kernel
      .audit({ kind: "clock.step", agent_id: null, ...step })
      .catch((err) => log.error({ err, step }, "clock.step was not recorded"));
  });

  // A/B slots (init mode): a trial boot to confirm once serving, or an attempt that failed and left us booted
  // (its code, with the bundle reader, is loaded only in init mode: a host has no slots)
  let upgrader: Upgrader | null = null;
  if (init) {
    try {
      upgrader = new (await import("./sys/upgrade.ts")).Upgrader({
        devices: init.partitions,
        cmdline: init.cmdline,
        dataDir,
        configDir,
        version: VERSION,
        bootId,
        audit: (e) => kernel.audit(e),
        log,
      });
    } catch (err) {
      // unconfirmed, a trial boot falls back to the previous slot at the next reboot
      log.error({ err }, "the upgrade code did not load: no system.upgrade, and a trial boot is not confirmed");
    }
  }
  await upgrader?.atBoot();

  // MCP both ways (docs/mcp.md): external servers connect in the background; each client's principal is spawned
  kernel.mcp.start();
  const mcp = new McpService({
    services: kernel,
    servers: kernel.mcp,
    config: config.mcp,
    configDir,
    version: VERSION,
    log,
  });
  await mcp.start();
  init?.mark("upgrade-mcp");

  const listeners: Listener[] = [];
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    for (const l of listeners) l.close();
    await mcp.close();
    // every agent stopped; a persistent one's state kept for the next boot
    await kernel.shutdown().catch((err) => log.error({ err }, "error while stopping the agents"));
    await kernel.audit({ kind: "system.stop", agent_id: null, boot_id: bootId }).catch(() => {});
    await audit.close();
    log.flush?.();
  };
  const shutdown = (action: "poweroff" | "reboot") => {
    void (async () => {
      await stop().catch((err) => log.error({ err }, "error while stopping"));
      if (init) await init.shutdown(action);
      else process.exit(0);
    })();
  };

  // the dashboard: --listen http:HOST:PORT; in the appliance (init mode) kernel.yaml's web.listen, unless the
  // command line names one (host mode ignores web.listen, as it ignores network:: a kernel run on a
  // workstation with the image's config must not open 0.0.0.0:8080 there)
  const webSpecs = listenSpecs.filter((s) => s.kind === "http");
  const fromYaml = init && config.web.listen ? parseHostPort(config.web.listen) : null;
  if (fromYaml && webSpecs.length === 0) webSpecs.push({ kind: "http", ...fromYaml });
  let tokens: Tokens | null = null;
  // the dashboard's code and assets (kernel/web) are loaded only when an HTTP listener is configured
  let web: { auth: typeof import("./web/auth.ts"); server: typeof import("./web/server.ts") } | null = null;
  if (webSpecs.length > 0) {
    try {
      const [auth, server] = await Promise.all([import("./web/auth.ts"), import("./web/server.ts")]);
      web = { auth, server };
    } catch (err) {
      if (!init) throw err;
      log.error({ err }, "the dashboard's code did not load: no HTTP listener");
    }
  }
  if (web) {
    try {
      tokens = web.auth.loadTokens({
        configDir,
        dataDir,
        operatorFile: config.web.operator_token_file,
        viewerFile: config.web.viewer_token_file,
      });
    } catch (err) {
      // host mode stops on it; PID 1 serves its console without the dashboard
      if (!init) throw err;
      log.error({ err }, "the dashboard's tokens cannot be read: no HTTP listener");
    }
  }
  const webUrls: string[] = [];

  const inferenceConfig = InferenceConfigSchema.parse(config.inference ?? {});
  const facts = {
    version: VERSION,
    bootId,
    mode: args.mode,
    startedAt,
    config: configReport,
    boot: init?.bootReport,
    shutdown,
    stats: () => systemStats(dataDir, startedAt, init?.status()),
    // the appliance's init logs to <data>/logs/init.log once /data is mounted (init/index.ts)
    logs: logReader({ kernel: logFile, ...(init ? { init: join(dataDir, "logs", "init.log") } : {}) }),
    ...(tokens ? { web: () => ({ operator: tokens!.operator, viewer: tokens!.viewer, urls: webUrls }) } : {}),
    mcp,
    inference: () => summarizeInference(inferenceConfig, configDir, process.env),
    ...(upgrader ? { upgrade: upgrader } : {}),
  };
  const serverOptions = {
    maxLineBytes: config.rpc.max_line_bytes,
    maxPendingOutputBytes: config.rpc.max_pending_output_bytes,
    maxInFlight: config.rpc.max_in_flight,
    log,
    onOpen: (conn: { notify(m: string, p: unknown): void }) =>
      conn.notify("system.ready", { version: VERSION, boot_id: bootId }),
  };
  const table = methodTable(kernel, facts);
  const server = new RpcServer(table, serverOptions);
  // a dashboard viewer's table (only with the dashboard): the same read-only methods, every other one refused
  const viewer = tokens && web ? new RpcServer(viewerTable(table), serverOptions) : null;
  kernel.subscribe((e) => {
    server.broadcast(e.method, e.params);
    viewer?.broadcast(e.method, e.params);
  });
  init?.mark("rpc");
  for (const spec of listenSpecs) if (spec.kind !== "http") listeners.push(await listen(spec, server, log));
  init?.mark("listen");
  if (tokens && web && viewer) {
    const auth = new web.auth.Auth(tokens, parseDuration(config.web.session_ttl)!);
    for (const spec of webSpecs) {
      if (spec.kind !== "http") continue;
      try {
        const listener = web.server.startWeb({
          hostname: spec.hostname,
          port: spec.port,
          auth,
          servers: { operator: server, viewer },
          audit: (e) => kernel.audit(e),
          log,
          maxMessageBytes: config.rpc.max_line_bytes,
          mcp: (req, client) =>
            mcp.fetch(req, client, (e) =>
              kernel
                .audit({ kind: "mcp.refused", agent_id: null, ...e })
                .catch((err) => log.error({ err }, "mcp.refused was not recorded")),
            ),
        });
        webUrls.push(listener.url);
        listeners.push(listener);
      } catch (err) {
        if (!init) throw err;
        log.error({ err, listen: `${spec.hostname}:${spec.port}` }, "the dashboard's listener did not start");
      }
    }
  }

  if (init) init.onShutdownRequest(shutdown);
  else for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => shutdown("poweroff"));

  // serving: system.ready is out on the RPC line, so a trial boot of a new system confirms itself
  await upgrader?.confirm();

  // what only the boot used (the parse of kernel.yaml, code compiled for one-time paths) is
  // released the next time the kernel is idle: about 3 MiB of idle RSS (bench/memory.ts)
  Bun.shrink();
  log.info(
    { version: VERSION, boot_id: bootId, mode: args.mode, listen: listeners.map((l) => l.describe) },
    "aaos kernel ready",
  );
  return { kernel, listeners, stop };
}

/**
 * --log-file; else kernel.yaml's log.file (relative: to the data directory);
 * else, in init mode, <data>/logs/kernel.log (the console is the RPC line,
 * never a log); else stderr. Whichever file it is, it is kernel-private.
 */
function kernelLogFile(args: Args, config: KernelConfig, dataDir: string): string | undefined {
  if (args.logFile !== undefined) return resolve(args.logFile);
  if (config.log.file !== undefined) return resolve(dataDir, config.log.file);
  return args.mode === "init" ? join(dataDir, "logs", "kernel.log") : undefined;
}

/** the key files kernel.yaml names (kernel-private whatever a grant says) */
function configuredKeyFiles(config: KernelConfig, configDir: string): string[] {
  const p = config.inference?.providers;
  const files = [
    p?.anthropic?.api_key_file,
    ...(p?.openai_compatible ?? []).map((e) => e.api_key_file),
    config.web.operator_token_file,
    config.web.viewer_token_file,
    ...Object.values(config.mcp.clients).map((c) => c.token_file),
    ...Object.values(config.mcp.servers).map((c) => c.token_file),
  ];
  return files.filter((f): f is string => !!f).map((f) => resolve(keyFile(configDir, f)));
}

/** PID 1 never dies of a handler's error: log it, audit it, go on. */
function guardProcess(services: AgentServices, log: Logger) {
  const report = (kind: string) => (err: unknown) => {
    log.error({ err }, kind);
    services
      .audit({ kind: "kernel.error", agent_id: null, error: String((err as Error)?.stack ?? err).slice(0, 2000) })
      .catch(() => {});
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
