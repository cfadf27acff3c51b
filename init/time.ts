// PID 1's SNTP client (RFC 4330, client mode of RFC 5905): asks the NTP
// servers of kernel.yaml `network.ntp` and those the DHCP lease offers
// (option 42), in that order, until one answers; steps the system clock when
// it is off by more than STEP_THRESHOLD_MS (audited clock.step, since audit
// times jump with it), slews it otherwise, and polls again every 30 minutes
// (after a failed poll sooner, backing off to that). Its edges are
// injected: the clock (tests must not set the host's), the port, the
// resolver; the socket is Bun's UDP socket, which a test server on loopback
// answers.
//
// A reply counts only if it answers our request: the request's transmit
// timestamp is a random nonce (RFC 9109 §4) that the reply must carry back as
// its originate timestamp; a server that is unsynchronised, or says
// kiss-o'-death (stratum 0), is passed over.
import { lookup } from "node:dns/promises";
import type { Logger } from "pino";
import { slewClock, stepClock } from "../kernel/sys/clock.ts";
import type { ClockSyncStatus } from "../kernel/sys/stats.ts";

/** an offset past this is stepped (ntpd's threshold); below it, slewed */
export const STEP_THRESHOLD_MS = 128;
export const POLL_MS = 30 * 60_000;
/** after a failed poll: 30 s, doubling to POLL_MS */
export const RETRY_MS = 30_000;
const QUERY_TIMEOUT_MS = 2_000;
/** servers asked per poll, at most */
const MAX_SERVERS = 8;
/** clock steps kept for the audit log until the kernel takes them */
const MAX_PENDING_STEPS = 16;
/** NTP's era 0 starts 1900-01-01; Unix time 70 years later */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface SystemClock {
  /** the wall clock, ms since the Unix epoch */
  now(): number;
  step(offsetMs: number): void;
  slew(offsetMs: number): void;
}

/** CLOCK_REALTIME itself (init mode) */
export const systemClock: SystemClock = { now: () => Date.now(), step: stepClock, slew: slewClock };

/** what a clock.step audit record holds */
export interface ClockStep {
  server: string;
  offset_ms: number;
  stratum: number;
  /** the clock just before the step, and just after */
  from: string;
  to: string;
}

// ---- packets -----------------------------------------------------------------

/** a 48-byte client request (LI 0, VN 4, mode 3) whose transmit timestamp is the nonce */
export function buildSntpRequest(nonce: Uint8Array): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = (4 << 3) | 3;
  p.set(nonce.subarray(0, 8), 40);
  return p;
}

/** an NTP timestamp (seconds since 1900 and a 32-bit fraction) in Unix ms; era 1 from 2036 */
export function ntpToMs(b: Uint8Array, offset: number): number {
  const dv = new DataView(b.buffer, b.byteOffset + offset, 8);
  let secs = dv.getUint32(0);
  if (secs < 0x80000000) secs += 2 ** 32; // the era that starts in 2036 (a 1968 time is not an answer)
  return (secs - NTP_UNIX_OFFSET_S) * 1000 + (dv.getUint32(4) * 1000) / 2 ** 32;
}

export interface SntpReply {
  stratum: number;
  /** the server's receive (T2) and transmit (T3) times, Unix ms */
  receive: number;
  transmit: number;
}

/** a server's reply to the request with this nonce, or why it is none */
export function parseSntpReply(p: Uint8Array, nonce: Uint8Array): SntpReply | { error: string } {
  if (p.length < 48) return { error: `a ${p.length}-byte reply` };
  const li = p[0]! >> 6;
  const vn = (p[0]! >> 3) & 7;
  const mode = p[0]! & 7;
  if (mode !== 4 || vn < 1 || vn > 4) return { error: `not a server reply (mode ${mode}, version ${vn})` };
  for (let i = 0; i < 8; i++) if (p[24 + i] !== nonce[i]) return { error: "a reply to another request" };
  const stratum = p[1]!;
  if (stratum === 0) {
    const code = String.fromCharCode(...p.subarray(12, 16)).replace(/[^\x20-\x7e]/g, "?");
    return { error: `kiss-o'-death ${code}` };
  }
  if (li === 3 || stratum > 15) return { error: "the server's clock is not synchronised" };
  if (p.subarray(40, 48).every((b) => b === 0)) return { error: "no transmit time" };
  return { stratum, receive: ntpToMs(p, 32), transmit: ntpToMs(p, 40) };
}

/** RFC 4330: offset ((T2-T1)+(T3-T4))/2, round-trip delay (T4-T1)-(T3-T2) */
export function offsetAndDelay(t1: number, r: SntpReply, t4: number): { offset: number; delay: number } {
  return { offset: (r.receive - t1 + (r.transmit - t4)) / 2, delay: t4 - t1 - (r.transmit - r.receive) };
}

// ---- the client --------------------------------------------------------------

export interface TimeSyncOptions {
  /** asked before every poll: kernel.yaml's servers, then the lease's */
  servers(): string[];
  log: Logger;
  clock?: SystemClock;
  /** the servers' port (123) */
  port?: number;
  pollMs?: number;
  retryMs?: number;
  timeoutMs?: number;
  stepThresholdMs?: number;
  /** a host name to an IPv4 address (default: the resolver, /etc/resolv.conf) */
  resolve?(host: string): Promise<string>;
  /** the first poll waits for this (the network) */
  ready?: Promise<unknown>;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const mono = () => performance.now();

export class TimeSync {
  private readonly clock: SystemClock;
  private readonly pollMs: number;
  private last: { server: string; stratum: number; offset: number; delay: number; at: number } | null = null;
  private lastStep: { at: string; offset_ms: number } | null = null;
  private error: string | undefined;
  private serversNow: string[] = [];
  private stopped = false;
  private wake: (() => void) | null = null;
  private stepHandler: ((s: ClockStep) => void) | null = null;
  private pendingSteps: ClockStep[] = [];
  private firstDone!: (synced: boolean) => void;
  /** resolves after the first poll: true if it set the time */
  readonly first: Promise<boolean> = new Promise((r) => (this.firstDone = r));
  readonly done: Promise<void>;

  constructor(private readonly o: TimeSyncOptions) {
    this.clock = o.clock ?? systemClock;
    this.pollMs = o.pollMs ?? POLL_MS;
    this.done = this.run().catch((err) => {
      o.log.error({ err }, "sntp: client failed");
      this.firstDone(false);
    });
  }

  /** clock.step events go to handler; those from before it was set are handed over at once */
  onStep(handler: (s: ClockStep) => void): void {
    this.stepHandler = handler;
    for (const s of this.pendingSteps.splice(0)) handler(s);
  }

  status(): ClockSyncStatus {
    const l = this.last;
    return {
      // the last answer is recent: it may have been a few polls ago, the clock does not drift far in that time
      synced: l !== null && mono() - l.at < 3 * this.pollMs,
      servers: this.serversNow,
      server: l?.server ?? null,
      stratum: l?.stratum ?? null,
      offset_ms: l ? Math.round(l.offset * 1000) / 1000 : null,
      delay_ms: l ? Math.round(l.delay * 1000) / 1000 : null,
      last_sync: l ? new Date(Date.now() - (mono() - l.at)).toISOString() : null,
      last_step: this.lastStep,
      ...(this.error !== undefined ? { error: this.error } : {}),
    };
  }

  /** poll now (the lease brought other servers) */
  poke(): void {
    this.wake?.();
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    await this.o.ready?.catch(() => {});
    let retry = this.o.retryMs ?? RETRY_MS;
    while (!this.stopped) {
      this.serversNow = [...new Set(this.o.servers())].slice(0, MAX_SERVERS);
      if (this.serversNow.length === 0) {
        // nothing is sent: look again soon, a lease may bring some
        this.error = "no NTP servers (kernel.yaml network.ntp, DHCP option 42)";
        this.firstDone(false);
        await this.sleep(this.o.retryMs ?? RETRY_MS);
        continue;
      }
      const synced = await this.poll(this.serversNow);
      this.firstDone(synced);
      if (this.stopped) return;
      if (synced) retry = this.o.retryMs ?? RETRY_MS;
      await this.sleep(synced ? this.pollMs : retry);
      if (!synced) retry = Math.min(retry * 2, this.pollMs);
    }
  }

  /** the first server that answers sets the clock; false if none did */
  private async poll(servers: string[]): Promise<boolean> {
    const errors: string[] = [];
    for (const server of servers) {
      if (this.stopped) return false;
      const r = await this.query(server);
      if ("error" in r) {
        errors.push(`${server}: ${r.error}`);
        continue;
      }
      this.error = undefined;
      this.correct(server, r.stratum, r.offset, r.delay);
      return true;
    }
    this.error = errors.join("; ");
    this.o.log.warn({ errors }, "sntp: no server answered");
    return false;
  }

  private correct(server: string, stratum: number, offset: number, delay: number): void {
    const threshold = this.o.stepThresholdMs ?? STEP_THRESHOLD_MS;
    this.last = { server, stratum, offset, delay, at: mono() };
    try {
      if (Math.abs(offset) > threshold) {
        const before = this.clock.now();
        this.clock.step(offset);
        const after = this.clock.now();
        const step: ClockStep = {
          server,
          offset_ms: Math.round(offset),
          stratum,
          from: new Date(before).toISOString(),
          to: new Date(after).toISOString(),
        };
        this.lastStep = { at: step.to, offset_ms: step.offset_ms };
        this.o.log.warn(step, "sntp: clock stepped");
        if (this.stepHandler) this.stepHandler(step);
        else {
          this.pendingSteps.push(step);
          if (this.pendingSteps.length > MAX_PENDING_STEPS) this.pendingSteps.shift();
        }
      } else {
        this.clock.slew(offset);
        this.o.log.debug({ server, offset_ms: offset, delay_ms: delay }, "sntp: clock slewed");
      }
    } catch (err) {
      this.error = `cannot set the clock: ${(err as Error).message}`;
      this.o.log.error({ err, offset_ms: offset }, "sntp: cannot set the clock");
    }
  }

  /** one request and its reply: the offset and delay, or why not */
  private async query(server: string): Promise<{ stratum: number; offset: number; delay: number } | { error: string }> {
    let address: string;
    try {
      address = IPV4.test(server) ? server : await (this.o.resolve ?? resolve4)(server);
    } catch (err) {
      return { error: `cannot resolve: ${(err as Error).message}` };
    }
    const port = this.o.port ?? 123;
    const nonce = crypto.getRandomValues(new Uint8Array(8));
    let settle!: (r: { data: Uint8Array; t4: number } | null) => void;
    const answered = new Promise<{ data: Uint8Array; t4: number } | null>((r) => (settle = r));
    let sock: { close(): void } | null = null;
    const timer = setTimeout(() => settle(null), this.o.timeoutMs ?? QUERY_TIMEOUT_MS);
    try {
      const udp = await Bun.udpSocket({
        socket: {
          data: (_s, buf, fromPort, fromAddr) => {
            if (fromPort !== port || fromAddr !== address) return; // not from the server asked
            settle({ data: new Uint8Array(buf), t4: this.clock.now() });
          },
        },
      });
      sock = udp;
      const t1 = this.clock.now();
      if (!udp.send(buildSntpRequest(nonce), port, address)) return { error: "the request was not sent" };
      const got = await answered;
      if (!got) return { error: "no answer" };
      const r = parseSntpReply(got.data, nonce);
      if ("error" in r) return r;
      return { stratum: r.stratum, ...offsetAndDelay(t1, r, got.t4) };
    } catch (err) {
      return { error: (err as Error).message };
    } finally {
      clearTimeout(timer);
      sock?.close();
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

async function resolve4(host: string): Promise<string> {
  return (await lookup(host, { family: 4 })).address;
}
