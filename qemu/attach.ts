// make run's console on the VM's serial socket, and what leaving it means:
// Ctrl-D or `exit` powers the VM off cleanly; Ctrl-] (the console's detach
// key, as telnet's escape) leaves the VM running for a later
// `aaosctl --serial out/serial.sock console`.
import { join, relative } from "node:path";
import { RpcClient } from "../cli/client.ts";

/** the status the console exits with when Ctrl-] detached it (AAOSCTL_DETACH_STATUS) */
export const DETACH_STATUS = 10;

export interface Vm {
  pid: number;
  exitCode: number | null;
  exited: Promise<number>;
  kill(): void;
}

const ROOT = join(import.meta.dir, "..");

/**
 * Runs the console on `socket` with this process's terminal. Returns
 * "detached" when the person pressed Ctrl-] (the VM is left running), else
 * "off" once the VM has powered off (or was already gone).
 */
export async function attachConsole(o: {
  socket: string;
  vm: Vm;
  env?: Record<string, string | undefined>;
  /** how long the VM may take to power off before it is killed */
  poweroffMs?: number;
}): Promise<"detached" | "off"> {
  const con = Bun.spawn([process.execPath, join(ROOT, "cli/main.ts"), "--serial", o.socket, "console"], {
    // the greeting's hint for configuring a provider is the host's environment here
    env: { ...(o.env ?? process.env), AAOS_MAKE_RUN: "1", AAOSCTL_DETACH_STATUS: String(DETACH_STATUS) },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  });
  const status = await con.exited;
  if (o.vm.exitCode !== null) return "off";
  const shown = relative(process.cwd(), o.socket).startsWith("..") ? o.socket : relative(process.cwd(), o.socket);
  if (status === DETACH_STATUS) {
    console.error(`aaos: detached; the VM keeps running (QEMU pid ${o.vm.pid})`);
    console.error(`aaos: re-attach:  aaosctl --serial ${shown} console`);
    console.error(`aaos: power off:  aaosctl --serial ${shown} shutdown`);
    return "detached";
  }
  console.error("aaos: console closed; powering the machine off (Ctrl-] in the console detaches instead)");
  try {
    const c = await RpcClient.unix(o.socket, 5000);
    await c.call("system.shutdown", { action: "poweroff" }, { timeoutMs: 20_000 }).catch(() => {});
  } catch {}
  const t = await Promise.race([o.vm.exited, Bun.sleep(o.poweroffMs ?? 60_000).then(() => "timeout")]);
  if (t === "timeout") o.vm.kill();
  return "off";
}
