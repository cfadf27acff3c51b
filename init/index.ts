// PID 1's boot and shutdown sequence (after init/stage0.c has mounted /proc
// and /dev and exec'd us), in two steps. kernel/main.ts calls enterInitMode()
// first thing when it runs as PID 1 (or with --init): signals, the RPC tty,
// /config and /data mounted. It then reads kernel.yaml (the kernel's one
// parse) and hands its `network:` section to finishBoot(): the network, the
// orphan reaper, the power button. Then it serves JSON-RPC on the RPC tty.
// init/ depends on the kernel (kernel/sys, the config schema), never the
// reverse.
//
// Invariant: nothing here throws out. Every step logs what went wrong and
// the boot goes on; a kernel with a missing disk or no network still answers
// on its console, where the operator can see why.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
  constants as fsc,
} from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import {
  mount,
  MNT_DETACH,
  MS_NOATIME,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RDONLY,
  sync,
  umount,
} from "../kernel/sys/mount.ts";
import { reboot, setConsoleLogLevel, setCtrlAltDel } from "../kernel/sys/reboot.ts";
import { setRawMode } from "../kernel/sys/termios.ts";
import { readCmdline, rpcLine } from "./cmdline.ts";
import { NetworkConfigSchema, type NetworkConfig } from "../kernel/config.ts";
import { startNetwork, type Network } from "./network.ts";
import { TimeSync, type ClockStep } from "./time.ts";
import type { InitStatus } from "../kernel/sys/stats.ts";
import { growDataPartition, type GrowReport } from "./growdata.ts";
import { findByLabel, waitForLabel } from "./partitions.ts";
import { startReaper } from "./reaper.ts";
import { watchPowerButton } from "./powerbutton.ts";
import { bootClock } from "./bootclock.ts";

export type ShutdownAction = "poweroff" | "reboot";

export interface InitEnvironment {
  configDir: string;
  dataDir: string;
  /** e.g. "/dev/ttyS0", from aaos.rpc= on /proc/cmdline (already raw, at its baud) */
  rpcDevice: string;
  /** stop accepting, sync, unmount /data and /config, reboot(2) */
  shutdown(action: ShutdownAction): Promise<never>;
  /** SIGTERM → poweroff, SIGINT (ctrl-alt-del) → reboot */
  onShutdownRequest(handler: (action: ShutdownAction) => void): void;
  /**
   * the second step, once kernel.yaml is read: the network (waited for at
   * most 3 s, then it goes on trying behind), the orphan reaper, the power
   * button. Never throws.
   */
  finishBoot(network: NetworkConfig | undefined): Promise<void>;
  /** the network's lease and the clock's sync, for system.stats (after finishBoot) */
  status(): InitStatus | undefined;
  /** the SNTP client stepped the clock (audited clock.step); steps from before the call are handed over at once */
  onClockStep(handler: (step: ClockStep) => void): void;
  /**
   * the kernel's own boot step that just ended, timed into bootReport.steps_ms
   * from the previous one (or from finishBoot's end): kernel/main.ts calls it
   * between its steps, the last time once the RPC line is served
   */
  mark(step: string): void;
  /** what happened during boot, for system.info and the operator */
  bootReport: BootReport;
  /** the kernel command line (root= names the booted system slot) */
  cmdline: string;
  /** the boot partition and the two system slots, by GPT name (kernel/sys/upgrade.ts); null: not found */
  partitions: { boot: string | null; a: string | null; b: string | null };
}

export interface BootReport {
  config: { device: string | null; mounted: boolean; error?: string };
  data: {
    device: string | null;
    mounted: boolean;
    persistent: boolean;
    first_boot: boolean;
    error?: string;
    /** AAOS-DATA grown to the end of its disk (init/growdata.ts), or why not */
    grow?: GrowReport;
  };
  rpc: { device: string; baud?: number };
  /** each step's ms, in order (init/bootclock.ts names those before this code ran) */
  steps_ms: Record<string, number>;
  /** CLOCK_BOOTTIME ms (from Linux's start) at the last step kernel/main.ts marked: the console's system.ready */
  ready_ms?: number;
}

export const CONFIG_LABEL = "AAOS-CFG";
export const DATA_LABEL = "AAOS-DATA";
/** directories the kernel keeps under /data */
export const DATA_LAYOUT = ["audit", "logs", "files", "agents", "approvals", "tmp"];
const LAYOUT_VERSION = 1;
/** how long a shutdown request may take before PID 1 powers off regardless */
const SHUTDOWN_WATCHDOG_MS = 30_000;
/**
 * How long the last bytes get before the power goes. The kernel has stopped
 * and the system.shutdown reply has left it (MethodContext.afterReply), but
 * "left" means the tty took it: the serial line still has to clock it out,
 * and pino the last log lines. Nothing reports when those are done.
 */
const POWEROFF_FLUSH_MS = 50;
/** how long boot waits for the network before serving (it keeps trying behind) */
const NETWORK_WAIT_MS = 3_000;

function step<T>(log: Logger, name: string, times: Record<string, number>, f: () => T, fallback: T): T {
  const t0 = performance.now();
  try {
    return f();
  } catch (err) {
    log.error({ err, step: name }, `init: ${name} failed`);
    return fallback;
  } finally {
    times[name] = Math.round(performance.now() - t0);
  }
}

function mountQuiet(log: Logger, src: string, target: string, type: string, flags: number, data?: string): boolean {
  try {
    mkdirSync(target, { recursive: true });
  } catch {
    // read-only root: the directory ships in the image
  }
  try {
    mount(src, target, type, flags, data);
    return true;
  } catch (err) {
    if ((err as { errno?: number }).errno === 16) return true; // EBUSY: already mounted
    log.error({ err, target }, "init: mount failed");
    return false;
  }
}

export async function enterInitMode(
  consoleLog: Logger,
  opts: { configDir?: string; dataDir?: string } = {},
): Promise<InitEnvironment> {
  // until /data is mounted, problems go to the console (the operator must see
  // them); after that to /data/logs/init.log, keeping the RPC line for JSON-RPC
  let log = consoleLog;
  const configDir = opts.configDir ?? "/config";
  const dataDir = opts.dataDir ?? "/data";
  const clock = bootClock();
  const times: Record<string, number> = { ...clock.steps };
  const cmdline = readCmdline();
  const rpc = rpcLine(cmdline);
  const report: BootReport = {
    config: { device: null, mounted: false },
    data: { device: null, mounted: false, persistent: false, first_boot: false },
    rpc,
    steps_ms: times,
  };

  // signals first: a SIGTERM during boot is remembered, not lost
  const shutdownCtl = shutdownController(() => log, configDir, dataDir);

  step(
    log,
    "console",
    times,
    () => {
      setConsoleLogLevel(1); // only emergencies reach the console: it is the RPC line
      setCtrlAltDel(false); // ctrl-alt-del → SIGINT to us → clean reboot
    },
    undefined,
  );

  step(
    log,
    "pseudo-fs",
    times,
    () => {
      mountQuiet(log, "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC);
      mountQuiet(log, "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
      mountQuiet(log, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    },
    undefined,
  );

  // the RPC line raw and at its speed before anything is said on it; a
  // virtual console can appear a moment after we start, and a line that
  // never appears falls back to the first UART so the machine stays reachable
  const tRpc = performance.now();
  for (const deadline = Date.now() + 3000; !existsSync(rpc.device) && Date.now() < deadline;) await Bun.sleep(20);
  if (!existsSync(rpc.device) && rpc.device !== "/dev/ttyS0") {
    log.error({ wanted: rpc.device }, "init: RPC device missing; using /dev/ttyS0");
    rpc.device = "/dev/ttyS0";
    rpc.baud = 115200;
  }
  step(
    log,
    "rpc-tty",
    times,
    () => {
      const fd = openSync(rpc.device, fsc.O_RDWR | fsc.O_NOCTTY | fsc.O_NONBLOCK);
      try {
        setRawMode(fd, rpc.baud);
      } finally {
        closeSync(fd);
      }
    },
    undefined,
  );
  times["rpc-tty"] = Math.round(performance.now() - tRpc);

  const t0 = performance.now();
  const cfgDev = await waitForLabel(CONFIG_LABEL, 10_000).catch(() => null);
  report.config.device = cfgDev;
  if (cfgDev) {
    report.config.mounted = mountQuiet(
      log,
      cfgDev,
      configDir,
      "vfat",
      MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
      "utf8=1,shortname=mixed,fmask=0177,dmask=0077",
    );
  } else {
    report.config.error = `no partition labelled ${CONFIG_LABEL}`;
    log.error(report.config.error + "; booting with an empty configuration");
  }
  const dataDev = await waitForLabel(DATA_LABEL, cfgDev ? 2_000 : 10_000).catch(() => null);
  report.data.device = dataDev;
  if (dataDev && mountQuiet(log, dataDev, dataDir, "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME)) {
    report.data.mounted = report.data.persistent = true;
  } else {
    report.data.error = dataDev ? `cannot mount ${dataDev} as ext4` : `no partition labelled ${DATA_LABEL}`;
    log.error(report.data.error + "; state lives in memory until the next boot");
    report.data.mounted = mountQuiet(log, "tmpfs", dataDir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  }
  times.disks = Math.round(performance.now() - t0);
  // the A/B layout: system.upgrade writes the slot not booted and the boot partition's entries
  const partitions = step(
    log,
    "slots",
    times,
    () => ({ boot: findByLabel("AAOS-BOOT"), a: findByLabel("AAOS-SYS-A"), b: findByLabel("AAOS-SYS-B") }),
    { boot: null, a: null, b: null },
  );

  report.data.first_boot = step(log, "data-layout", times, () => ensureDataLayout(dataDir), false);
  log = step(
    log,
    "init-log",
    times,
    () =>
      pino(
        { level: consoleLog.level, base: { pid: process.pid, init: true } },
        pino.destination({ dest: join(dataDir, "logs", "init.log"), mkdir: true, sync: true }),
      ),
    log,
  );

  // AAOS-DATA takes the rest of its disk: the first boot after dd to a larger
  // disk, or after a VM's disk was enlarged; otherwise a few reads
  if (report.data.persistent && dataDev) {
    const grow = step(
      log,
      "data-grow",
      times,
      () => growDataPartition({ device: dataDev, mountPoint: dataDir, label: DATA_LABEL }),
      { status: "failed", reason: "unexpected error (see init.log)", done: [] },
    );
    report.data.grow = grow;
    if (grow.status === "failed") log.error({ grow }, "init: AAOS-DATA was not grown; serving with its size");
    else log.info({ grow }, `init: AAOS-DATA ${grow.status}`);
  } else report.data.grow = { status: "skipped", reason: "AAOS-DATA is not mounted", done: [] };

  let net: Network | null = null;
  let time: TimeSync | null = null;
  const finishBoot = async (netCfg: NetworkConfig | undefined): Promise<void> => {
    const t0 = performance.now();
    // no network: section: the defaults (DHCP on the first interface)
    const cfg = netCfg ?? NetworkConfigSchema.parse({});
    const n = (net = startNetwork(cfg, log));
    const network = n.ready.catch((err) => {
      log.error({ err }, "init: network failed");
      return null;
    });
    // the clock from kernel.yaml's NTP servers and the lease's; a first answer within the wait dates system.boot
    time = new TimeSync({ servers: () => [...cfg.ntp, ...n.ntpServers()], log, ready: network });
    await Promise.race([network.then(() => time!.first), Bun.sleep(NETWORK_WAIT_MS)]);
    times.network = Math.round(performance.now() - t0);

    step(log, "reaper", times, () => startReaper(log), undefined);
    step(log, "power-button", times, () => watchPowerButton(log, () => shutdownCtl.request("poweroff")), []);
    log.info({ boot: report, uptime_s: readUptime() }, "init: system up");
    lastMark = performance.now();
  };

  let lastMark = performance.now();
  const mark = (name: string) => {
    const now = performance.now();
    times[name] = Math.round(now - lastMark);
    lastMark = now;
    const at = clock.boottimeAt(now);
    if (Number.isFinite(at)) report.ready_ms = Math.round(at);
  };

  return {
    configDir,
    dataDir,
    rpcDevice: rpc.device,
    bootReport: report,
    mark,
    cmdline,
    partitions,
    shutdown: shutdownCtl.shutdown,
    onShutdownRequest: shutdownCtl.onShutdownRequest,
    finishBoot,
    status: () =>
      net && time ? { interface: net.state.interface, dhcp: net.lease(), clock: time.status() } : undefined,
    onClockStep: (handler) => time?.onStep(handler),
  };
}

function readUptime(): number | null {
  try {
    return Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
  } catch {
    return null;
  }
}

/** Create what the kernel expects under /data; true on the first boot. */
export function ensureDataLayout(dataDir: string): boolean {
  const marker = join(dataDir, ".aaos-layout.json");
  const first = !existsSync(marker);
  for (const d of DATA_LAYOUT) mkdirSync(join(dataDir, d), { recursive: true });
  if (first)
    writeFileSync(marker, JSON.stringify({ version: LAYOUT_VERSION, created_at: new Date().toISOString() }) + "\n");
  return first;
}

function shutdownController(getLog: () => Logger, configDir: string, dataDir: string) {
  let handler: ((a: ShutdownAction) => void) | null = null;
  let pending: ShutdownAction | null = null;
  let started = false;

  const shutdown = async (action: ShutdownAction): Promise<never> => {
    if (!started) {
      started = true;
      const log = getLog();
      log.info({ action }, "init: shutting down");
      try {
        log.flush?.();
      } catch {}
      await Bun.sleep(POWEROFF_FLUSH_MS);
      finalStop(action, [dataDir, configDir]);
    }
    return new Promise<never>(() => {});
  };

  const request = (action: ShutdownAction) => {
    // whatever the handler does, the machine goes down within the watchdog
    setTimeout(() => void shutdown(action), SHUTDOWN_WATCHDOG_MS).unref?.();
    if (handler) {
      try {
        handler(action);
      } catch (err) {
        getLog().error({ err }, "init: shutdown handler failed");
        void shutdown(action);
      }
    } else pending = action;
  };
  process.on("SIGTERM", () => request("poweroff"));
  process.on("SIGINT", () => request("reboot"));

  return {
    shutdown,
    request,
    onShutdownRequest(h: (a: ShutdownAction) => void) {
      handler = h;
      if (pending) request(pending);
      pending = null;
    },
  };
}

/**
 * The last synchronous steps: flush, close our own files on the disks (the
 * log file is one), unmount, power off. Nothing runs between them.
 */
function finalStop(action: ShutdownAction, mounts: string[]): void {
  const say = (m: string) => {
    try {
      writeFileSync("/dev/kmsg", `aaos-init: ${m}\n`);
    } catch {}
  };
  sync();
  try {
    for (const fd of readdirSync("/proc/self/fd")) {
      let target = "";
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue;
      }
      if (mounts.some((m) => target.startsWith(m + "/"))) {
        try {
          closeSync(Number(fd));
        } catch {}
      }
    }
  } catch {}
  for (const m of mounts) {
    try {
      umount(m);
    } catch (err) {
      say(`umount ${m}: ${(err as Error).message}; detaching`);
      try {
        umount(m, MNT_DETACH);
      } catch {}
    }
  }
  sync();
  try {
    reboot(action);
  } catch (err) {
    say(`reboot(${action}) failed: ${(err as Error).message}`);
  }
}
