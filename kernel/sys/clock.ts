// Setting the system clock for PID 1's SNTP client (init/time.ts):
// clock_settime(CLOCK_REALTIME) to step it, adjtime(3) to slew it.
import { check, libc } from "./libc.ts";

const CLOCK_REALTIME = 0;

/** Step CLOCK_REALTIME by offsetMs (the new time is read and written at once). */
export function stepClock(offsetMs: number): void {
  const target = Date.now() + offsetMs;
  // struct timespec { i64 tv_sec; i64 tv_nsec }
  const ts = new BigInt64Array(2);
  const sec = Math.floor(target / 1000);
  ts[0] = BigInt(sec);
  ts[1] = BigInt(Math.round((target - sec * 1000) * 1e6));
  check("clock_settime(CLOCK_REALTIME)", libc().clock_settime(CLOCK_REALTIME, ts));
}

/** Slew the clock by offsetMs: the kernel runs it faster or slower (at most 0.5 ms/s) until it is made up. */
export function slewClock(offsetMs: number): void {
  // struct timeval { i64 tv_sec; i64 tv_usec }, both of the offset's sign
  const us = Math.round(offsetMs * 1000);
  const tv = new BigInt64Array([BigInt(Math.trunc(us / 1e6)), BigInt(us % 1e6)]);
  check("adjtime", libc().adjtime(tv, null));
}
