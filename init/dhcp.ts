// PID 1's DHCP client (RFC 2131): DISCOVER/OFFER/REQUEST/ACK for a lease,
// then kept for as long as the machine runs: at T1 a REQUEST unicast to the
// server that gave it (RENEWING), at T2 a broadcast one to any server
// (REBINDING), at expiry the address is dropped and discovery starts again.
// Its edges are injected (the socket, the ports, what binding a lease does)
// so that tests run it against a server on loopback; init/network.ts gives
// it the interface's socket on port 68 and the ioctls.
//
// Lease times run on the monotonic clock: the SNTP client (init/time.ts)
// may step the wall clock under a lease, which must not renew it early or
// late. Wall times are derived only when the lease is reported.
import type { Logger } from "pino";
import { formatIPv4, parseIPv4 } from "../kernel/sys/net.ts";
import type { LeaseStatus } from "../kernel/sys/stats.ts";

// ---- packets -----------------------------------------------------------------

const MAGIC = [99, 130, 83, 99];
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPACK = 5;
export const DHCPNAK = 6;

export interface DhcpRequestFields {
  /** option 50: the address asked for (SELECTING, INIT-REBOOT) */
  requested?: string;
  /** option 54: the server chosen (SELECTING only) */
  server?: string;
  /** the address the client holds (RENEWING, REBINDING) */
  ciaddr?: string;
  /** ask for broadcast replies (default: true, for a client with no address yet) */
  broadcast?: boolean;
}

export function buildDhcp(type: number, xid: number, mac: Uint8Array, extra: DhcpRequestFields = {}): Uint8Array {
  const opts: number[] = [53, 1, type];
  if (extra.requested) opts.push(50, 4, ...parseIPv4(extra.requested));
  if (extra.server) opts.push(54, 4, ...parseIPv4(extra.server));
  opts.push(55, 7, 1, 3, 6, 42, 51, 58, 59); // mask, router, DNS, NTP servers, lease time, T1, T2
  opts.push(12, 4, ...Buffer.from("aaos"));
  opts.push(255);
  const p = new Uint8Array(240 + opts.length);
  const dv = new DataView(p.buffer);
  p[0] = 1; // BOOTREQUEST
  p[1] = 1; // ethernet
  p[2] = 6;
  dv.setUint32(4, xid >>> 0);
  if (extra.broadcast ?? true) dv.setUint16(10, 0x8000);
  if (extra.ciaddr) p.set(parseIPv4(extra.ciaddr), 12);
  p.set(mac.subarray(0, 6), 28);
  p.set(MAGIC, 236);
  p.set(opts, 240);
  return p;
}

export interface DhcpReply {
  type: number;
  xid: number;
  yiaddr: string;
  options: Map<number, Uint8Array>;
}

export function parseDhcp(p: Uint8Array): DhcpReply | null {
  if (p.length < 241 || p[0] !== 2) return null;
  if (MAGIC.some((b, i) => p[236 + i] !== b)) return null;
  const options = new Map<number, Uint8Array>();
  let i = 240;
  while (i < p.length) {
    const code = p[i]!;
    if (code === 255) break;
    if (code === 0) {
      i++;
      continue;
    }
    const len = p[i + 1];
    if (len === undefined || i + 2 + len > p.length) return null;
    options.set(code, p.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  const type = options.get(53)?.[0];
  if (type === undefined) return null;
  return {
    type,
    xid: new DataView(p.buffer, p.byteOffset).getUint32(4),
    yiaddr: formatIPv4(p.subarray(16, 20)),
    options,
  };
}

export function maskToPrefix(mask: Uint8Array): number {
  let n = 0;
  for (const b of mask) for (let bit = 7; bit >= 0; bit--) if (b & (1 << bit)) n++;
  return n;
}

export interface Lease {
  address: string;
  prefix: number;
  router: string | null;
  dns: string[];
  /** option 42 */
  ntp: string[];
  server: string | null;
  /** undefined or 0xffffffff: infinite */
  leaseSeconds?: number;
  /** options 58 and 59 (absent: 1/2 and 7/8 of the lease) */
  t1Seconds?: number;
  t2Seconds?: number;
}

const INFINITE = 0xffffffff;

function addresses(b: Uint8Array | undefined): string[] {
  const out: string[] = [];
  if (b) for (let i = 0; i + 4 <= b.length; i += 4) out.push(formatIPv4(b.subarray(i, i + 4)));
  return out;
}

function u32(b: Uint8Array | undefined): number | undefined {
  return b && b.length === 4 ? new DataView(b.buffer, b.byteOffset).getUint32(0) : undefined;
}

export function leaseFrom(ack: DhcpReply): Lease {
  const mask = ack.options.get(1);
  const server = ack.options.get(54);
  return {
    address: ack.yiaddr,
    prefix: mask && mask.length === 4 ? maskToPrefix(mask) : 24,
    router: addresses(ack.options.get(3))[0] ?? null,
    dns: addresses(ack.options.get(6)),
    ntp: addresses(ack.options.get(42)),
    server: server && server.length === 4 ? formatIPv4(server) : null,
    leaseSeconds: u32(ack.options.get(51)),
    t1Seconds: u32(ack.options.get(58)),
    t2Seconds: u32(ack.options.get(59)),
  };
}

/** T1, T2 and the expiry in seconds after the ACK (null: never) */
export function leaseTimes(l: Lease): { t1: number; t2: number; expiry: number } | null {
  const len = l.leaseSeconds;
  if (len === undefined || len === INFINITE) return null;
  let t2 = l.t2Seconds !== undefined && l.t2Seconds < len ? l.t2Seconds : len * 0.875;
  let t1 = l.t1Seconds !== undefined && l.t1Seconds < t2 ? l.t1Seconds : len * 0.5;
  if (t1 > t2) t1 = t2;
  if (t2 > len) t2 = len;
  return { t1, t2, expiry: len };
}

// ---- the client --------------------------------------------------------------

export interface DhcpTransport {
  send(packet: Uint8Array, address: string, port: number): void;
  /** one datagram if one is waiting, else null (never blocks) */
  receive(): Uint8Array | null;
  close(): void;
}

export interface DhcpClientOptions {
  mac: Uint8Array;
  /** the client's socket: the interface's, on port 68 (tests: loopback, another port) */
  transport: DhcpTransport;
  /** where servers listen (67) */
  serverPort?: number;
  /** where DISCOVER and rebinding REQUESTs go (255.255.255.255) */
  broadcast?: string;
  /** a lease was obtained, renewed or rebound: configure the interface (previous: the lease it replaces) */
  bind(lease: Lease, previous: Lease | null): void;
  /** the lease expired (or a server refused it): stop using the address */
  unbind(lease: Lease): void;
  log: Logger;
  /** the shortest wait for a reply while RENEWING or REBINDING (RFC 2131 4.4.5: 60 s) */
  minRetryMs?: number;
  /** DISCOVER's retransmission starts here and doubles (to maxDiscoverMs) */
  discoverRetryMs?: number;
  maxDiscoverMs?: number;
}

type Phase = LeaseStatus["state"];

/** the monotonic clock, ms */
const mono = () => performance.now();

export class DhcpClient {
  private lease: Lease | null = null;
  private phase: Phase = "selecting";
  /** monotonic ms of the ACK of the lease held */
  private obtainedAt = 0;
  private lastRenewal: { at: number; via: "renew" | "rebind"; ok: boolean } | null = null;
  private renewals = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private firstBound!: (l: Lease) => void;
  /** resolves with the first lease bound */
  readonly first: Promise<Lease> = new Promise((r) => (this.firstBound = r));
  readonly done: Promise<void>;

  constructor(private readonly o: DhcpClientOptions) {
    this.done = this.run().catch((err) => {
      if (!this.stopped) o.log.error({ err }, "dhcp: client failed");
    });
  }

  /** the lease as system.stats reports it (wall times from now's clock) */
  status(): LeaseStatus {
    const l = this.lease;
    const wallNow = Date.now();
    const monoNow = mono();
    const wallOf = (monoMs: number) => new Date(wallNow - (monoNow - monoMs)).toISOString();
    const times = l ? leaseTimes(l) : null;
    const at = (s: number | undefined) => (l && s !== undefined ? wallOf(this.obtainedAt + s * 1000) : null);
    return {
      state: this.phase,
      address: l?.address ?? null,
      server: l?.server ?? null,
      lease_seconds: l?.leaseSeconds ?? null,
      obtained: l ? wallOf(this.obtainedAt) : null,
      expires: at(times?.expiry),
      t1: at(times?.t1),
      t2: at(times?.t2),
      last_renewal: this.lastRenewal && { ...this.lastRenewal, at: wallOf(this.lastRenewal.at) },
      renewals: this.renewals,
    };
  }

  current(): Lease | null {
    return this.lease;
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
    this.o.transport.close();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const lease = await this.acquire();
      if (!lease) return;
      this.bound(lease, "discover");
      await this.keep();
    }
  }

  /** DISCOVER → OFFER → REQUEST → ACK, retransmitting with backoff until a lease is bound (or stop) */
  private async acquire(): Promise<Lease | null> {
    this.phase = "selecting";
    const base = this.o.discoverRetryMs ?? 500;
    for (
      let attempt = 0, wait = base;
      !this.stopped;
      attempt++, wait = Math.min(wait * 2, this.o.maxDiscoverMs ?? 64_000)
    ) {
      const xid = newXid();
      const dest = this.o.broadcast ?? "255.255.255.255";
      const offer = await this.exchange(buildDhcp(DHCPDISCOVER, xid, this.o.mac), xid, [DHCPOFFER], dest, wait);
      if (!offer) continue;
      const server = offer.options.get(54);
      const request = buildDhcp(DHCPREQUEST, xid, this.o.mac, {
        requested: offer.yiaddr,
        server: server && server.length === 4 ? formatIPv4(server) : undefined,
      });
      const ack = await this.exchange(request, xid, [DHCPACK, DHCPNAK], dest, wait);
      if (ack?.type === DHCPACK) return leaseFrom(ack);
      this.o.log.warn({ attempt, reply: ack?.type ?? "none" }, "dhcp: no ACK, retrying");
    }
    return null;
  }

  /** BOUND → RENEWING (T1) → REBINDING (T2) → expiry; returns when the lease is lost (or stop) */
  private async keep(): Promise<void> {
    while (!this.stopped && this.lease) {
      const lease = this.lease;
      const times = leaseTimes(lease);
      if (!times) {
        await this.sleep(Infinity); // an infinite lease: nothing to renew
        continue;
      }
      const t0 = this.obtainedAt;
      const t1 = t0 + times.t1 * 1000;
      const t2 = t0 + times.t2 * 1000;
      const expiry = t0 + times.expiry * 1000;
      while (!this.stopped && mono() < t1) await this.sleep(t1 - mono());
      // RENEWING: unicast to the server of the lease, until T2; then REBINDING: broadcast, to any server, until expiry
      let outcome = lease.server ? await this.extend(lease, "renew", lease.server, t2) : "timeout";
      if (outcome === "timeout")
        outcome = await this.extend(lease, "rebind", this.o.broadcast ?? "255.255.255.255", expiry);
      if (outcome === "ack") continue;
      if (this.stopped) return;
      if (this.lease === lease) {
        const why = outcome === "nak" ? "the server refused it" : "it expired";
        this.o.log.warn(
          { address: lease.address, server: lease.server },
          `dhcp: lease lost (${why}); discovering again`,
        );
        this.lease = null;
        this.phase = "selecting";
        try {
          this.o.unbind(lease);
        } catch (err) {
          this.o.log.error({ err }, "dhcp: could not drop the address");
        }
      }
      return;
    }
  }

  /**
   * REQUEST with ciaddr (no requested address, no server id) to dest until `until`,
   * each wait half the time left, down to minRetryMs (RFC 2131 4.4.5).
   * ack: the lease was extended; nak: the server refused it; timeout: nobody answered in time.
   */
  private async extend(
    lease: Lease,
    via: "renew" | "rebind",
    dest: string,
    until: number,
  ): Promise<"ack" | "nak" | "timeout"> {
    this.phase = via === "renew" ? "renewing" : "rebinding";
    const minRetry = this.o.minRetryMs ?? 60_000;
    while (!this.stopped && mono() < until) {
      const xid = newXid();
      const packet = buildDhcp(DHCPREQUEST, xid, this.o.mac, { ciaddr: lease.address, broadcast: false });
      // half the time left; once that is under minRetryMs, no more tries: listen out the rest
      const left = until - mono();
      const wait = left / 2 >= minRetry ? left / 2 : left;
      const reply = await this.exchange(packet, xid, [DHCPACK, DHCPNAK], dest, wait);
      if (!reply) {
        this.lastRenewal = { at: mono(), via, ok: false };
        continue;
      }
      this.lastRenewal = { at: mono(), via, ok: reply.type === DHCPACK };
      if (reply.type === DHCPACK) {
        this.renewals++;
        this.bound(leaseFrom(reply), via);
        return "ack";
      }
      return "nak";
    }
    return "timeout";
  }

  private bound(lease: Lease, how: "discover" | "renew" | "rebind"): void {
    const previous = this.lease;
    this.lease = lease;
    this.obtainedAt = mono();
    this.phase = "bound";
    try {
      this.o.bind(lease, previous);
    } catch (err) {
      this.o.log.error({ err, address: lease.address }, "dhcp: could not configure the lease");
    }
    this.o.log.info({ how, address: lease.address, server: lease.server, lease_s: lease.leaseSeconds }, "dhcp: bound");
    if (!previous && how === "discover") this.firstBound(lease);
  }

  /** send, then the first reply of this xid and one of these types within waitMs (null: none) */
  private async exchange(
    packet: Uint8Array,
    xid: number,
    want: number[],
    dest: string,
    waitMs: number,
  ): Promise<DhcpReply | null> {
    const t = this.o.transport;
    while (t.receive()); // drop what an earlier exchange left
    try {
      t.send(packet, dest, this.o.serverPort ?? 67);
    } catch (err) {
      // no route yet (the interface is coming up), or the address just went: wait and retry
      this.o.log.debug({ err, dest }, "dhcp: send failed");
      await this.sleep(waitMs);
      return null;
    }
    const until = mono() + waitMs;
    while (!this.stopped && mono() < until) {
      for (let d = t.receive(); d; d = t.receive()) {
        const r = parseDhcp(d);
        if (r && r.xid === xid && want.includes(r.type)) return r;
      }
      await this.sleep(Math.min(20, until - mono()));
    }
    return null;
  }

  /** sleep ms on the monotonic clock; stop() ends it early */
  private sleep(ms: number): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(done, Math.min(ms, 2 ** 31 - 1)) : null;
      function done() {
        if (timer) clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function newXid(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
