// waitpid(2) for PID 1's orphan reaper.
import { errno, libc, SysError } from "./libc.ts";

export const WNOHANG = 1;
const ECHILD = 10;

/**
 * Reap pid (or any child with -1) if it has exited; never blocks.
 * Returns {pid, status} for a reaped child, null when none is ready or there are no children.
 */
export function reapNoHang(pid = -1): { pid: number; status: number } | null {
  const status = new Int32Array(1);
  const rc = libc().waitpid(pid, status, WNOHANG);
  if (rc > 0) return { pid: rc, status: status[0]! };
  if (rc === 0) return null;
  const e = errno();
  if (e === ECHILD) return null;
  throw new SysError("waitpid", e);
}
