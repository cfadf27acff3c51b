// make run's console (qemu/attach.ts) without QEMU: the "VM" is a host-mode
// kernel already running (its pid), reached through a serial-line stand-in.
//
//   bun test/cli/make-run-console.ts SERIAL_SOCKET KERNEL_PID
import { attachConsole } from "../../qemu/attach.ts";

const [socket, pidText] = process.argv.slice(2);
const pid = Number(pidText);
const alive = () => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const vm = {
  pid,
  get exitCode() {
    return alive() ? null : 0;
  },
  exited: (async () => {
    while (alive()) await Bun.sleep(50);
    return 0;
  })(),
  kill: () => process.kill(pid, "SIGKILL"),
};
const how = await attachConsole({ socket: socket!, vm, poweroffMs: 15_000 });
console.error(`make-run-console: ${how}; the VM is ${alive() ? "running" : "off"}`);
process.exit(0);
