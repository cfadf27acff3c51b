// What the machine looks like from PID 1: memory, the data disk, load,
// network interfaces, the clock. Read from /proc and the standard library on
// every call (system.stats); nothing is cached.
import { readFileSync, statfsSync } from "node:fs";
import { loadavg, networkInterfaces, totalmem } from "node:os";

/** an interface's DHCP lease (init mode), as init/dhcp.ts keeps it; times are ISO, read from the clock of now */
export interface LeaseStatus {
  /** bound: the lease holds; renewing (past T1: unicast to its server), rebinding (past T2: broadcast); selecting: none */
  state: "selecting" | "bound" | "renewing" | "rebinding";
  address: string | null;
  server: string | null;
  lease_seconds: number | null;
  obtained: string | null;
  /** null: an infinite lease */
  expires: string | null;
  t1: string | null;
  t2: string | null;
  /** the last renewal or rebind that was tried, and whether the server answered with an ACK */
  last_renewal: { at: string; via: "renew" | "rebind"; ok: boolean } | null;
  renewals: number;
}

/** PID 1's SNTP client (init/time.ts) */
export interface ClockSyncStatus {
  /** a server answered within the last few polls */
  synced: boolean;
  /** the servers it asks, in order: kernel.yaml network.ntp, then the DHCP-offered ones */
  servers: string[];
  server: string | null;
  stratum: number | null;
  /** the last measured offset of the clock from the server's (before it was corrected) */
  offset_ms: number | null;
  delay_ms: number | null;
  last_sync: string | null;
  /** the last time the clock was stepped (an offset past the step threshold; audited clock.step) */
  last_step: { at: string; offset_ms: number } | null;
  /** why the last poll found no time */
  error?: string;
}

/** what init mode adds to system.stats */
export interface InitStatus {
  /** the interface init configured, and its lease (DHCP) */
  interface: string | null;
  dhcp: LeaseStatus | null;
  clock: ClockSyncStatus;
}

export interface SystemStats {
  uptime_ms: number;
  memory: { rss_bytes: number; heap_used_bytes: number; total_bytes: number; available_bytes: number | null };
  disk: { path: string; total_bytes: number; free_bytes: number; used_bytes: number } | null;
  load: [number, number, number];
  /** the lease rides on the IPv4 address DHCP gave (init mode) */
  network: { interface: string; address: string; family: "IPv4" | "IPv6"; mac: string; dhcp?: LeaseStatus }[];
  /** host mode: the host's clock, not synchronised by the kernel; init mode: SNTP's state as well */
  clock: { now: string; synced: boolean; source: "rtc" | "sntp" } & Partial<Omit<ClockSyncStatus, "synced">>;
}

/** MemAvailable of /proc/meminfo, in bytes (null where there is no /proc) */
function memAvailable(): number | null {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function systemStats(dataDir: string, startedAt: number, init?: InitStatus): SystemStats {
  let disk: SystemStats["disk"] = null;
  try {
    const s = statfsSync(dataDir);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    disk = { path: dataDir, total_bytes: total, free_bytes: free, used_bytes: total - s.bfree * s.bsize };
  } catch {
    // no data directory (yet): null, not an error
  }
  const mem = process.memoryUsage();
  const l = loadavg();
  const network: SystemStats["network"] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.internal) continue;
      const entry: SystemStats["network"][number] = {
        interface: name,
        address: a.cidr ?? a.address,
        family: a.family,
        mac: a.mac,
      };
      if (init?.dhcp && name === init.interface && a.family === "IPv4" && a.address === init.dhcp.address)
        entry.dhcp = init.dhcp;
      network.push(entry);
    }
  }
  const now = new Date().toISOString();
  return {
    uptime_ms: Date.now() - startedAt,
    memory: {
      rss_bytes: mem.rss,
      heap_used_bytes: mem.heapUsed,
      total_bytes: totalmem(),
      available_bytes: memAvailable(),
    },
    disk,
    load: [l[0]!, l[1]!, l[2]!],
    network,
    // host mode keeps the host's clock; PID 1 synchronises it over SNTP (init/time.ts)
    clock: init
      ? { now, ...init.clock, source: init.clock.synced ? "sntp" : "rtc" }
      : { now, synced: false, source: "rtc" },
  };
}
