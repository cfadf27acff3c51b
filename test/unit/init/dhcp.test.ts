// PID 1's DHCP client (init/dhcp.ts) against a DHCP server on loopback: the
// server's own address is 127.0.0.1 (the server identifier it hands out, where
// renewals are unicast) and 127.0.0.2 stands for the broadcast address, so
// the test sees which way each request came. The client's socket is the
// kernel/sys/net.ts UdpSocket the appliance uses (on an ephemeral port here,
// not 68); what binding a lease does to the interface is recorded, not done.
// Leases are a few seconds long: each test waits for real T1/T2.
import { afterEach, expect, test } from "bun:test";
import pino from "pino";
import {
  DHCPACK,
  DhcpClient,
  DHCPDISCOVER,
  DHCPNAK,
  DHCPOFFER,
  DHCPREQUEST,
  parseDhcp,
  type Lease,
} from "../../../init/dhcp.ts";
import { UdpSocket } from "../../../kernel/sys/net.ts";

const log = pino({ level: "silent" });
const MAC = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
const SERVER = "127.0.0.1";
const BROADCAST = "127.0.0.2";

interface Request {
  type: number;
  xid: number;
  via: "unicast" | "broadcast";
  ciaddr: string;
  broadcastFlag: boolean;
  requested: string | null;
  serverId: string | null;
  /** ms since the test's server started */
  at: number;
}

type Answer = { type: number; address?: string; lease?: [number, number, number] } | null;

/** an ACK/OFFER/NAK as a server writes it: lease [seconds, T1, T2] */
function serverReply(req: Request, a: NonNullable<Answer>): Uint8Array {
  const [lease, t1, t2] = a.lease ?? [3, 1, 2];
  const u32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const ip = (s: string) => s.split(".").map(Number);
  const opts = [53, 1, a.type, 54, 4, ...ip(SERVER)];
  if (a.type !== DHCPNAK)
    opts.push(
      ...[1, 4, 255, 255, 255, 0],
      ...[3, 4, 10, 9, 0, 1],
      ...[6, 4, 10, 9, 0, 53],
      ...[42, 8, 10, 9, 0, 123, 10, 9, 0, 124],
      ...[51, 4, ...u32(lease), 58, 4, ...u32(t1), 59, 4, ...u32(t2)],
    );
  opts.push(255);
  const p = new Uint8Array(240 + opts.length);
  p[0] = 2;
  p[1] = 1;
  p[2] = 6;
  new DataView(p.buffer).setUint32(4, req.xid);
  if (a.type !== DHCPNAK) p.set(ip(a.address ?? "10.9.0.15"), 16);
  p.set(MAC, 28);
  p.set([99, 130, 83, 99], 236);
  p.set(opts, 240);
  return p;
}

async function dhcpServer(answer: (r: Request) => Answer) {
  const requests: Request[] = [];
  const t0 = performance.now();
  const handler = (via: Request["via"]) => ({
    data(sock: { send(d: Uint8Array, port: number, addr: string): boolean }, buf: Buffer, port: number, addr: string) {
      const copy = new Uint8Array(buf);
      copy[0] = 2; // parse the client's BOOTREQUEST with the reply parser
      const m = parseDhcp(copy);
      if (!m || buf[0] !== 1) return;
      const opt = (n: number) => {
        const v = m.options.get(n);
        return v && v.length === 4 ? Array.from(v).join(".") : null;
      };
      const r: Request = {
        type: m.type,
        xid: m.xid,
        via,
        ciaddr: Array.from(buf.subarray(12, 16)).join("."),
        broadcastFlag: (buf[10]! & 0x80) !== 0,
        requested: opt(50),
        serverId: opt(54),
        at: performance.now() - t0,
      };
      requests.push(r);
      const a = answer(r);
      if (a) sock.send(serverReply(r, a), port, addr);
    },
  });
  const unicast = await Bun.udpSocket({ hostname: SERVER, socket: handler("unicast") });
  const broadcast = await Bun.udpSocket({ hostname: BROADCAST, port: unicast.port, socket: handler("broadcast") });
  return {
    port: unicast.port,
    requests,
    t0,
    stop() {
      unicast.close();
      broadcast.close();
    },
  };
}

/** the server of most tests: offers and acknowledges every DISCOVER and REQUEST */
function standard(r: Request): Answer {
  if (r.type === DHCPDISCOVER) return { type: DHCPOFFER };
  if (r.type === DHCPREQUEST) return { type: DHCPACK };
  return null;
}

const running: { stop(): void }[] = [];
afterEach(() => {
  for (const r of running.splice(0)) r.stop();
});

function client(port: number, minRetryMs = 100) {
  const bound: { lease: Lease; previous: Lease | null }[] = [];
  const unbound: Lease[] = [];
  const c = new DhcpClient({
    mac: MAC,
    transport: new UdpSocket(0),
    serverPort: port,
    broadcast: BROADCAST,
    bind: (lease, previous) => bound.push({ lease, previous }),
    unbind: (lease) => unbound.push(lease),
    log,
    minRetryMs,
    discoverRetryMs: 200,
    maxDiscoverMs: 400,
  });
  running.push(c);
  return { c, bound, unbound };
}

async function until(cond: () => boolean, ms = 6000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await Bun.sleep(10);
  }
}

test("a lease, then a renewal at T1 unicast to its server; system.stats' lease follows", async () => {
  const srv = await dhcpServer(standard);
  running.push(srv);
  const { c, bound } = client(srv.port);
  const lease = await c.first;
  expect(lease).toMatchObject({
    address: "10.9.0.15",
    prefix: 24,
    router: "10.9.0.1",
    dns: ["10.9.0.53"],
    ntp: ["10.9.0.123", "10.9.0.124"],
    server: SERVER,
    leaseSeconds: 3,
  });
  // DISCOVER and REQUEST went to the broadcast address, asking for broadcast replies; the REQUEST names the offer
  expect(srv.requests.map((r) => [r.type, r.via, r.broadcastFlag])).toEqual([
    [DHCPDISCOVER, "broadcast", true],
    [DHCPREQUEST, "broadcast", true],
  ]);
  expect(srv.requests[1]).toMatchObject({ requested: "10.9.0.15", serverId: SERVER, ciaddr: "0.0.0.0" });
  expect(bound).toEqual([{ lease, previous: null }]);
  const boundAt = srv.requests[1]!.at;

  const s = c.status();
  expect(s).toMatchObject({ state: "bound", address: "10.9.0.15", server: SERVER, lease_seconds: 3, renewals: 0 });
  expect(s.last_renewal).toBeNull();
  const obtained = Date.parse(s.obtained!);
  expect(Math.abs(obtained - Date.now())).toBeLessThan(1000);
  expect(Date.parse(s.t1!) - obtained).toBe(1000);
  expect(Date.parse(s.t2!) - obtained).toBe(2000);
  expect(Date.parse(s.expires!) - obtained).toBe(3000);

  // T1: a REQUEST from the address held, unicast to the server, no broadcast flag, no server id
  await until(() => c.status().renewals === 1);
  const renew = srv.requests[2]!;
  expect(renew).toMatchObject({
    type: DHCPREQUEST,
    via: "unicast",
    ciaddr: "10.9.0.15",
    broadcastFlag: false,
    requested: null,
    serverId: null,
  });
  expect(renew.at - boundAt).toBeGreaterThanOrEqual(950);
  expect(renew.at - boundAt).toBeLessThan(2000);
  const after = c.status();
  expect(after).toMatchObject({ state: "bound", renewals: 1, last_renewal: { via: "renew", ok: true } });
  expect(Date.parse(after.obtained!)).toBeGreaterThan(obtained + 900);
  // the same address again: bound with the lease it replaces
  expect(bound).toHaveLength(2);
  expect(bound[1]!.previous).toEqual(lease);
}, 10_000);

test("a server that ignores the renewals: retried until T2, then a broadcast REQUEST rebinds", async () => {
  const srv = await dhcpServer((r) => (r.via === "unicast" ? null : standard(r)));
  running.push(srv);
  const { c } = client(srv.port);
  await c.first;
  const boundAt = srv.requests[1]!.at;
  await until(() => c.status().renewals === 1);
  const later = srv.requests.slice(2);
  const unicast = later.filter((r) => r.via === "unicast");
  const rebind = later.find((r) => r.via === "broadcast")!;
  // between T1 and T2 at least two unicast tries (half the time left, at least minRetryMs), then the broadcast
  expect(unicast.length).toBeGreaterThanOrEqual(2);
  for (const r of unicast) {
    expect(r.at - boundAt).toBeGreaterThanOrEqual(950);
    expect(r.at - boundAt).toBeLessThan(2000);
  }
  expect(rebind).toMatchObject({ type: DHCPREQUEST, ciaddr: "10.9.0.15", serverId: null, requested: null });
  expect(rebind.at - boundAt).toBeGreaterThanOrEqual(1950);
  expect(c.status()).toMatchObject({ state: "bound", renewals: 1, last_renewal: { via: "rebind", ok: true } });
}, 10_000);

test("nobody answers: at expiry the address is dropped and discovery starts again", async () => {
  let answering = true;
  const srv = await dhcpServer((r) => (answering ? standard(r) : null));
  running.push(srv);
  const { c, unbound } = client(srv.port);
  const lease = await c.first;
  answering = false;
  await until(() => c.status().state === "renewing");
  await until(() => c.status().state === "rebinding");
  expect(c.status().last_renewal).toMatchObject({ via: "renew", ok: false });
  await until(() => unbound.length === 1);
  expect(unbound[0]).toEqual(lease);
  expect(c.status()).toMatchObject({ state: "selecting", address: null, expires: null });
  await until(() => srv.requests.some((r, i) => i > 1 && r.type === DHCPDISCOVER));
  const lost = srv.requests.findIndex((r, i) => i > 1 && r.type === DHCPDISCOVER);
  expect(srv.requests[lost]!.at - srv.requests[1]!.at).toBeGreaterThanOrEqual(2950);
  // the server is back: a lease again
  answering = true;
  await until(() => c.status().state === "bound");
  expect(c.status().address).toBe("10.9.0.15");
}, 10_000);

test("a NAK to a renewal drops the lease at once and discovers again", async () => {
  let nak = false;
  const srv = await dhcpServer((r) =>
    nak && r.type === DHCPREQUEST && r.ciaddr !== "0.0.0.0" ? { type: DHCPNAK } : standard(r),
  );
  running.push(srv);
  const { c, bound, unbound } = client(srv.port);
  await c.first;
  nak = true;
  await until(() => unbound.length === 1);
  const renewAt = srv.requests.find((r) => r.ciaddr !== "0.0.0.0")!.at;
  expect(renewAt - srv.requests[1]!.at).toBeLessThan(2000); // at T1, not at expiry
  await until(() => bound.length === 2);
  expect(bound[1]!.previous).toBeNull();
  expect(c.status()).toMatchObject({ state: "bound", renewals: 0, last_renewal: { via: "renew", ok: false } });
}, 10_000);
