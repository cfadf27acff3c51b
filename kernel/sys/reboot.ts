// reboot(2) and the kernel log level: the last thing PID 1 does, and the
// ctrl-alt-del switch (CAD off: the kernel sends SIGINT to PID 1 instead of
// rebooting on the spot).
import { check, libc } from "./libc.ts";

export const LINUX_REBOOT_CMD_RESTART = 0x01234567;
export const LINUX_REBOOT_CMD_POWER_OFF = 0x4321fedc;
export const LINUX_REBOOT_CMD_HALT = 0xcdef0123 | 0;
export const LINUX_REBOOT_CMD_CAD_ON = 0x89abcdef | 0;
export const LINUX_REBOOT_CMD_CAD_OFF = 0;

/** Power off or restart now. Call sync() and unmount first. Returns only on failure. */
export function reboot(action: "poweroff" | "reboot" | "halt"): void {
  const cmd =
    action === "poweroff"
      ? LINUX_REBOOT_CMD_POWER_OFF
      : action === "reboot"
        ? LINUX_REBOOT_CMD_RESTART
        : LINUX_REBOOT_CMD_HALT;
  check("reboot", libc().reboot(cmd), action);
}

/** ctrl-alt-del → SIGINT to PID 1 (off) or an immediate reboot (on). */
export function setCtrlAltDel(immediateReboot: boolean): void {
  check("reboot", libc().reboot(immediateReboot ? LINUX_REBOOT_CMD_CAD_ON : LINUX_REBOOT_CMD_CAD_OFF), "cad");
}

const SYSLOG_ACTION_CONSOLE_LEVEL = 8;

/** Only kernel messages more urgent than level reach the console (1: emergencies only). */
export function setConsoleLogLevel(level: number): void {
  check("klogctl", libc().klogctl(SYSLOG_ACTION_CONSOLE_LEVEL, null, level), `console level ${level}`);
}
