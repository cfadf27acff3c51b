// Orphan reaping. As PID 1 every orphan becomes our child, and so does every
// process the kernel spawns itself (Bun waits for those). A waitpid(-1) would
// steal Bun's own children's exit statuses, so the reaper looks at /proc for
// zombies whose parent is us and reaps only those that stayed zombies across
// two scans: a child Bun is waiting for is reaped by Bun at once.
import { readdirSync, readFileSync } from "node:fs";
import type { Logger } from "pino";
import { reapNoHang } from "../kernel/sys/proc.ts";

/** pid, state, ppid from a /proc/PID/stat line (the name may contain spaces and parens). */
export function parseStat(text: string): { pid: number; state: string; ppid: number } | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const pid = Number(text.slice(0, text.indexOf(" ")));
  const rest = text.slice(close + 2).split(" ");
  return { pid, state: rest[0]!, ppid: Number(rest[1]) };
}

export function zombieChildren(parent: number, proc = "/proc"): number[] {
  const out: number[] = [];
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseStat(readFileSync(`${proc}/${name}/stat`, "utf8"));
      if (s && s.state === "Z" && s.ppid === parent) out.push(s.pid);
    } catch {
      // gone already
    }
  }
  return out;
}

export function startReaper(log: Logger, intervalMs = 2000): { stop(): void; scan(): number[] } {
  let seen = new Set<number>();
  const scan = (): number[] => {
    const reaped: number[] = [];
    try {
      const now = zombieChildren(process.pid);
      for (const pid of now) {
        if (!seen.has(pid)) continue;
        const r = reapNoHang(pid);
        if (r) reaped.push(r.pid);
      }
      seen = new Set(now.filter((p) => !reaped.includes(p)));
      if (reaped.length) log.debug({ reaped }, "reaped orphans");
    } catch (err) {
      log.warn({ err }, "reaper scan failed");
    }
    return reaped;
  };
  const timer = setInterval(scan, intervalMs);
  timer.unref?.();
  return { stop: () => clearInterval(timer), scan };
}
