// The network from kernel.yaml's `network:` section (the schema is the
// kernel's, kernel/config.ts; kernel/main.ts hands over the parsed section):
// static addressing or a small DHCP client (DISCOVER/OFFER/REQUEST/ACK over a
// UDP socket bound to the interface), DNS into /run/resolv.conf
// (/etc/resolv.conf links there).
// Errors are logged, never thrown out: a kernel without network still serves
// its console.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Logger } from "pino";
import type { NetworkConfig } from "../kernel/config.ts";
import {
  addDefaultRoute,
  formatIPv4,
  parseIPv4,
  setInterfaceAddress,
  setInterfaceUp,
  UdpSocket,
} from "../kernel/sys/net.ts";

export interface NetworkState {
  interface: string | null;
  address: string | null;
  prefix: number | null;
  gateway: string | null;
  dns: string[];
  mode: NetworkConfig["mode"];
  lease_seconds?: number;
}

export const RESOLV_CONF = "/run/resolv.conf";

/** First non-loopback interface under /sys/class/net, waiting up to waitMs for one to appear. */
export async function findInterface(
  wanted: string | undefined,
  waitMs = 5000,
  sysNet = "/sys/class/net",
): Promise<string | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const names = existsSync(sysNet) ? readdirSync(sysNet).sort() : [];
    if (wanted ? names.includes(wanted) : names.some((n) => n !== "lo"))
      return wanted ?? names.find((n) => n !== "lo")!;
    if (Date.now() >= deadline) return null;
    await Bun.sleep(50);
  }
}

export async function configureNetwork(
  cfg: NetworkConfig,
  log: Logger,
  opts: { resolvConf?: string } = {},
): Promise<NetworkState> {
  const state: NetworkState = { interface: null, address: null, prefix: null, gateway: null, dns: [], mode: cfg.mode };
  try {
    setInterfaceUp("lo");
  } catch (err) {
    log.warn({ err }, "network: could not bring up lo");
  }
  if (cfg.mode === "none") return state;
  const ifname = await findInterface(cfg.interface);
  if (!ifname) {
    log.warn({ wanted: cfg.interface ?? "any" }, "network: no interface");
    return state;
  }
  state.interface = ifname;
  setInterfaceUp(ifname);
  if (cfg.mode === "static") {
    const [addr, p] = cfg.address!.split("/");
    state.address = addr!;
    state.prefix = p ? Number(p) : 24;
    state.gateway = cfg.gateway ?? null;
    state.dns = cfg.dns === undefined ? [] : Array.isArray(cfg.dns) ? cfg.dns : [cfg.dns];
  } else {
    const lease = await dhcp(ifname, cfg.dhcp_timeout_ms, log);
    if (!lease) {
      log.warn({ interface: ifname }, "network: no DHCP lease");
      return state;
    }
    state.address = lease.address;
    state.prefix = lease.prefix;
    state.gateway = cfg.gateway ?? lease.router;
    state.dns = cfg.dns !== undefined ? (Array.isArray(cfg.dns) ? cfg.dns : [cfg.dns]) : lease.dns;
    state.lease_seconds = lease.leaseSeconds;
  }
  setInterfaceAddress(ifname, state.address!, state.prefix!);
  if (state.gateway) addDefaultRoute(state.gateway, ifname);
  if (state.dns.length)
    writeFileSync(opts.resolvConf ?? RESOLV_CONF, state.dns.map((d) => `nameserver ${d}\n`).join(""));
  log.info(state, "network up");
  return state;
}

// ---- DHCP (RFC 2131), just enough for one lease ------------------------------

const MAGIC = [99, 130, 83, 99];
export const DHCPDISCOVER = 1;
export const DHCPOFFER = 2;
export const DHCPREQUEST = 3;
export const DHCPACK = 5;
export const DHCPNAK = 6;

export function buildDhcp(
  type: number,
  xid: number,
  mac: Uint8Array,
  extra: { requested?: string; server?: string } = {},
): Uint8Array {
  const opts: number[] = [53, 1, type];
  if (extra.requested) opts.push(50, 4, ...parseIPv4(extra.requested));
  if (extra.server) opts.push(54, 4, ...parseIPv4(extra.server));
  opts.push(55, 4, 1, 3, 6, 51); // subnet mask, router, DNS, lease time
  opts.push(12, 4, ...Buffer.from("aaos"));
  opts.push(255);
  const p = new Uint8Array(240 + opts.length);
  const dv = new DataView(p.buffer);
  p[0] = 1; // BOOTREQUEST
  p[1] = 1; // ethernet
  p[2] = 6;
  dv.setUint32(4, xid >>> 0);
  dv.setUint16(10, 0x8000); // broadcast replies: we have no address yet
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
  server: string | null;
  leaseSeconds?: number;
}

export function leaseFrom(ack: DhcpReply): Lease {
  const mask = ack.options.get(1);
  const router = ack.options.get(3);
  const dns = ack.options.get(6);
  const server = ack.options.get(54);
  const time = ack.options.get(51);
  const dnsList: string[] = [];
  if (dns) for (let i = 0; i + 4 <= dns.length; i += 4) dnsList.push(formatIPv4(dns.subarray(i, i + 4)));
  return {
    address: ack.yiaddr,
    prefix: mask && mask.length === 4 ? maskToPrefix(mask) : 24,
    router: router && router.length >= 4 ? formatIPv4(router) : null,
    dns: dnsList,
    server: server && server.length === 4 ? formatIPv4(server) : null,
    leaseSeconds: time && time.length === 4 ? new DataView(time.buffer, time.byteOffset).getUint32(0) : undefined,
  };
}

function macOf(ifname: string): Uint8Array {
  const text = readFileSync(`/sys/class/net/${ifname}/address`, "utf8").trim();
  return Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
}

/** DISCOVER → OFFER → REQUEST → ACK with retries; the event loop keeps running between polls. */
async function dhcp(ifname: string, timeoutMs: number, log: Logger): Promise<Lease | null> {
  const mac = macOf(ifname);
  const sock = new UdpSocket(68, ifname);
  const deadline = Date.now() + timeoutMs;
  const xid = (Math.random() * 0xffffffff) >>> 0;
  const exchange = async (packet: Uint8Array, want: number[], waitMs: number): Promise<DhcpReply | null> => {
    sock.send(packet, "255.255.255.255", 67);
    const until = Math.min(Date.now() + waitMs, deadline);
    while (Date.now() < until) {
      for (let d = sock.receive(); d; d = sock.receive()) {
        const r = parseDhcp(d);
        if (r && r.xid === xid && want.includes(r.type)) return r;
      }
      await Bun.sleep(20);
    }
    return null;
  };
  try {
    for (let attempt = 0, wait = 500; Date.now() < deadline; attempt++, wait = Math.min(wait * 2, 4000)) {
      const offer = await exchange(buildDhcp(DHCPDISCOVER, xid, mac), [DHCPOFFER], wait);
      if (!offer) continue;
      const server = offer.options.get(54);
      const ack = await exchange(
        buildDhcp(DHCPREQUEST, xid, mac, { requested: offer.yiaddr, server: server ? formatIPv4(server) : undefined }),
        [DHCPACK, DHCPNAK],
        wait,
      );
      if (ack?.type === DHCPACK) return leaseFrom(ack);
      log.warn({ attempt, reply: ack?.type ?? "none" }, "dhcp: no ACK, retrying");
    }
    return null;
  } finally {
    sock.close();
  }
}
