// The orphan reaper, with this test process as a child subreaper (what PID 1
// is to every process): an orphaned grandchild's zombie is reaped after two
// scans, and a child someone still waits for is left alone for one scan.
import { expect, test } from "bun:test";
import { dlopen } from "bun:ffi";
import pino from "pino";
import { startReaper, zombieChildren } from "../../../init/reaper.ts";
import { powerPresses } from "../../../init/powerbutton.ts";

const PR_SET_CHILD_SUBREAPER = 36;

test("orphans reparented to us are reaped once they stay zombies across two scans", async () => {
  const { symbols } = dlopen("libc.so.6", { prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" } });
  expect(symbols.prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n)).toBe(0);
  try {
    // sh starts a short sleep in the background and exits: the sleep becomes our child
    const sh = Bun.spawn(["sh", "-c", "sleep 0.2 & echo $!"], { stdout: "pipe" });
    const orphan = Number((await new Response(sh.stdout).text()).trim());
    await sh.exited;
    const deadline = Date.now() + 5000;
    while (!zombieChildren(process.pid).includes(orphan) && Date.now() < deadline) await Bun.sleep(20);
    expect(zombieChildren(process.pid)).toContain(orphan);

    const reaper = startReaper(pino({ level: "silent" }), 1 << 30);
    try {
      expect(reaper.scan()).toEqual([]); // first sight: maybe someone's own child, leave it
      expect(reaper.scan()).toEqual([orphan]); // still a zombie: an orphan, reap it
      expect(zombieChildren(process.pid)).not.toContain(orphan);
    } finally {
      reaper.stop();
    }
  } finally {
    symbols.prctl(PR_SET_CHILD_SUBREAPER, 0n, 0n, 0n, 0n);
  }
});

test("power button: KEY_POWER presses in input_event records", () => {
  const ev = (type: number, code: number, value: number) => {
    const b = new Uint8Array(24);
    const dv = new DataView(b.buffer);
    dv.setUint16(16, type, true);
    dv.setUint16(18, code, true);
    dv.setInt32(20, value, true);
    return b;
  };
  const all = new Uint8Array(24 * 4);
  all.set(ev(1, 116, 1), 0); // press
  all.set(ev(0, 0, 0), 24); // SYN
  all.set(ev(1, 116, 0), 48); // release
  all.set(ev(1, 30, 1), 72); // another key
  expect(powerPresses(all)).toBe(1);
});
