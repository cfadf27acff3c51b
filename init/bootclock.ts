// Where the boot's time went before init/index.ts ran, for the boot report's
// steps_ms (system.info, system.boot, bench/boot.ts):
//
//   linux     Linux's own boot to PID 1 (CLOCK_BOOTTIME when stage0 starts)
//   exec      stage0's execve to Bun's time origin (loading a 100+ MB binary)
//   runtime   Bun's start to the bundle's first statement (its embedded code and bytecode)
//   modules   the bundle's first statement to kernel/main.ts's body: every module evaluated at import
//   to-main   exec + runtime + modules: stage0's execve to main's body
//   main      main's body to init (argv, the console's logger): bootClock() is called first thing
//
// stage0 passes CLOCK_BOOTTIME and CLOCK_REALTIME in AAOS_STAGE0_CLOCK (ns);
// the realtime clock lines its execve up with Bun's (performance.timeOrigin is
// realtime), and nothing steps that clock before this runs (SNTP starts later).
// `make image` adds the bundle's first statement (bun build --banner);
// kernel/main.ts's body records its start in __aaosMain. Missing pieces (host
// mode, `bun run`) are left out.

declare global {
  var __aaosEval0: number | undefined;
  var __aaosMain: number | undefined;
}

export interface BootClock {
  /** the steps above, ms */
  steps: Record<string, number>;
  /** CLOCK_BOOTTIME, ms, at performance.now() = t (NaN without stage0's clock) */
  boottimeAt(t: number): number;
}

export function bootClock(env: Record<string, string | undefined> = process.env): BootClock {
  const steps: Record<string, number> = {};
  const m = /^(\d+),(\d+)$/.exec(env.AAOS_STAGE0_CLOCK ?? "");
  // not for the agents' tools: the kernel's children get nothing of it
  delete env.AAOS_STAGE0_CLOCK;
  const eval0 = globalThis.__aaosEval0;
  const main = globalThis.__aaosMain;
  const ms = Math.round;
  let boottimeAt = (_t: number) => NaN;
  if (m) {
    const bootMs = Number(m[1]) / 1e6;
    const execRealMs = Number(m[2]) / 1e6;
    const origin = performance.timeOrigin - execRealMs; // ms from the execve to Bun's time origin
    steps.linux = ms(bootMs);
    steps.exec = ms(origin);
    boottimeAt = (t) => bootMs + origin + t;
    if (eval0 !== undefined) steps.runtime = ms(eval0);
    if (main !== undefined) steps["to-main"] = ms(origin + main);
  }
  if (eval0 !== undefined && main !== undefined) steps.modules = ms(main - eval0);
  if (main !== undefined) steps.main = ms(performance.now() - main);
  return { steps, boottimeAt };
}
