// What the machine looks like from PID 1: memory, the data disk, load,
// network interfaces, the clock. Read from /proc and the standard library on
// every call (system.stats); nothing is cached.
import { readFileSync, statfsSync } from "node:fs";
import { loadavg, networkInterfaces, totalmem } from "node:os";

export interface SystemStats {
  uptime_ms: number;
  memory: { rss_bytes: number; heap_used_bytes: number; total_bytes: number; available_bytes: number | null };
  disk: { path: string; total_bytes: number; free_bytes: number; used_bytes: number } | null;
  load: [number, number, number];
  network: { interface: string; address: string; family: "IPv4" | "IPv6"; mac: string }[];
  clock: { now: string; synced: boolean; source: "rtc" };
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

export function systemStats(dataDir: string, startedAt: number): SystemStats {
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
      network.push({ interface: name, address: a.cidr ?? a.address, family: a.family, mac: a.mac });
    }
  }
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
    // no time synchronisation yet (issue 12 adds SNTP): the clock is the RTC's
    clock: { now: new Date().toISOString(), synced: false, source: "rtc" },
  };
}
