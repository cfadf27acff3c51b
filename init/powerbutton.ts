// The ACPI power button (a real machine's, or QEMU's system_powerdown) as a
// clean poweroff: there is no acpid, so PID 1 reads the button's evdev node.
import { existsSync, openSync, readdirSync, readFileSync, readSync, constants as fsc } from "node:fs";
import type { Logger } from "pino";

const EV_KEY = 1;
const KEY_POWER = 116;
const EVENT_SIZE = 24;
const POLL_MS = 250; // struct input_event on x86_64: timeval(16) type(2) code(2) value(4)

/** KEY_POWER presses in a chunk of input_event records (whole records only). */
export function powerPresses(buf: Uint8Array): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let n = 0;
  for (let off = 0; off + EVENT_SIZE <= buf.byteLength; off += EVENT_SIZE) {
    if (
      dv.getUint16(off + 16, true) === EV_KEY &&
      dv.getUint16(off + 18, true) === KEY_POWER &&
      dv.getInt32(off + 20, true) === 1
    )
      n++;
  }
  return n;
}

export function watchPowerButton(log: Logger, onPress: () => void, sysInput = "/sys/class/input"): string[] {
  const watched: string[] = [];
  if (!existsSync(sysInput)) return watched;
  for (const ev of readdirSync(sysInput).filter((n) => /^event\d+$/.test(n))) {
    let name = "";
    try {
      name = readFileSync(`${sysInput}/${ev}/device/name`, "utf8").trim();
    } catch {
      continue;
    }
    if (!/power button/i.test(name)) continue;
    const dev = `/dev/input/${ev}`;
    try {
      // A non-blocking fd polled on a timer: a stream on an evdev node would
      // park a blocking read() in Bun's I/O pool (seen stalling the RPC tty).
      const fd = openSync(dev, fsc.O_RDONLY | fsc.O_NONBLOCK);
      const buf = Buffer.alloc(EVENT_SIZE * 32);
      const timer = setInterval(() => {
        for (;;) {
          let n = 0;
          try {
            n = readSync(fd, buf, 0, buf.length, null);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "EAGAIN")
              log.warn({ err, dev }, "init: power button read failed");
            return;
          }
          if (n <= 0) return;
          if (powerPresses(buf.subarray(0, n - (n % EVENT_SIZE))) > 0) {
            log.info({ dev, name }, "init: power button pressed");
            onPress();
          }
        }
      }, POLL_MS);
      timer.unref?.();
      watched.push(dev);
    } catch (err) {
      log.warn({ err, dev }, "init: cannot watch the power button");
    }
  }
  return watched;
}
