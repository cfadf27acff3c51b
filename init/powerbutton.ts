// The ACPI power button (a real machine's, or QEMU's system_powerdown) as a
// clean poweroff: there is no acpid, so PID 1 reads the button's evdev node.
import { createReadStream, existsSync, readdirSync, readFileSync } from "node:fs";
import type { Logger } from "pino";

const EV_KEY = 1;
const KEY_POWER = 116;
const EVENT_SIZE = 24; // struct input_event on x86_64: timeval(16) type(2) code(2) value(4)

/** KEY_POWER presses in a chunk of input_event records (whole records only). */
export function powerPresses(buf: Uint8Array): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let n = 0;
  for (let off = 0; off + EVENT_SIZE <= buf.byteLength; off += EVENT_SIZE) {
    if (dv.getUint16(off + 16, true) === EV_KEY && dv.getUint16(off + 18, true) === KEY_POWER && dv.getInt32(off + 20, true) === 1) n++;
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
      let pending = Buffer.alloc(0);
      const s = createReadStream(dev, { highWaterMark: EVENT_SIZE * 16 });
      s.on("data", (chunk) => {
        pending = Buffer.concat([pending, chunk as Buffer]);
        const whole = pending.length - (pending.length % EVENT_SIZE);
        if (powerPresses(pending.subarray(0, whole)) > 0) {
          log.info({ dev, name }, "init: power button pressed");
          onPress();
        }
        pending = pending.subarray(whole);
      });
      s.on("error", (err) => log.warn({ err, dev }, "init: power button device error"));
      watched.push(dev);
    } catch (err) {
      log.warn({ err, dev }, "init: cannot watch the power button");
    }
  }
  return watched;
}
