// The network from kernel.yaml's `network:` section (the schema is the
// kernel's, kernel/config.ts; kernel/main.ts hands over the parsed section):
// static addressing or a DHCP client (init/dhcp.ts, over a UDP socket bound to
// the interface) that renews its lease for as long as PID 1 runs, DNS into
// /run/resolv.conf (/etc/resolv.conf links there).
// Errors are logged, never thrown out: a kernel without network still serves
// its console.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import type { Logger } from "pino";
import type { NetworkConfig } from "../kernel/config.ts";
import {
  addDefaultRoute,
  clearInterfaceAddress,
  setInterfaceAddress,
  setInterfaceUp,
  UdpSocket,
} from "../kernel/sys/net.ts";
import type { LeaseStatus } from "../kernel/sys/stats.ts";
import { DhcpClient } from "./dhcp.ts";

// the DHCP packets live in init/dhcp.ts with the client
export {
  buildDhcp,
  DHCPACK,
  DHCPDISCOVER,
  DHCPNAK,
  DHCPOFFER,
  DHCPREQUEST,
  leaseFrom,
  maskToPrefix,
  parseDhcp,
} from "./dhcp.ts";
export type { DhcpReply, Lease } from "./dhcp.ts";

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

/** the network as it is being brought up and kept (DHCP renews for as long as PID 1 runs) */
export interface Network {
  /** the interface configured (static, or the first DHCP lease); null: it will not be (none, no interface) */
  ready: Promise<NetworkState | null>;
  state: NetworkState;
  /** the DHCP lease (null: not DHCP) */
  lease(): LeaseStatus | null;
  /** the NTP servers the lease offers (DHCP option 42) */
  ntpServers(): string[];
  stop(): void;
}

export function startNetwork(cfg: NetworkConfig, log: Logger, opts: { resolvConf?: string } = {}): Network {
  const state: NetworkState = { interface: null, address: null, prefix: null, gateway: null, dns: [], mode: cfg.mode };
  let client: DhcpClient | null = null;
  let stopped = false;
  const dnsOf = (fallback: string[]) =>
    cfg.dns !== undefined ? (Array.isArray(cfg.dns) ? cfg.dns : [cfg.dns]) : fallback;
  const writeResolv = () => {
    if (state.dns.length)
      writeFileSync(opts.resolvConf ?? RESOLV_CONF, state.dns.map((d) => `nameserver ${d}\n`).join(""));
  };
  const ready = (async (): Promise<NetworkState | null> => {
    try {
      setInterfaceUp("lo");
    } catch (err) {
      log.warn({ err }, "network: could not bring up lo");
    }
    if (cfg.mode === "none") return null;
    const ifname = await findInterface(cfg.interface);
    if (!ifname || stopped) {
      log.warn({ wanted: cfg.interface ?? "any" }, "network: no interface");
      return null;
    }
    state.interface = ifname;
    setInterfaceUp(ifname);
    if (cfg.mode === "static") {
      const [addr, p] = cfg.address!.split("/");
      state.address = addr!;
      state.prefix = p ? Number(p) : 24;
      state.gateway = cfg.gateway ?? null;
      state.dns = dnsOf([]);
      setInterfaceAddress(ifname, state.address, state.prefix);
      if (state.gateway) addDefaultRoute(state.gateway, ifname);
      writeResolv();
      log.info(state, "network up");
      return state;
    }
    const dhcp = new DhcpClient({
      mac: macOf(ifname),
      transport: new UdpSocket(68, ifname),
      log,
      bind(lease, previous) {
        // the same address again (a renewal): the interface is left alone, its routes with it
        if (!previous || previous.address !== lease.address || previous.prefix !== lease.prefix)
          setInterfaceAddress(ifname, lease.address, lease.prefix);
        state.address = lease.address;
        state.prefix = lease.prefix;
        state.gateway = cfg.gateway ?? lease.router;
        state.dns = dnsOf(lease.dns);
        state.lease_seconds = lease.leaseSeconds;
        if (state.gateway) addDefaultRoute(state.gateway, ifname);
        writeResolv();
        if (!previous) log.info(state, "network up");
      },
      unbind() {
        state.address = state.prefix = null;
        clearInterfaceAddress(ifname);
      },
    });
    client = dhcp;
    if (stopped) dhcp.stop();
    // past dhcp_timeout_ms boot goes on without a lease; the client keeps discovering behind
    const lease = await Promise.race([dhcp.first, Bun.sleep(cfg.dhcp_timeout_ms).then(() => null)]);
    if (!lease) {
      log.warn({ interface: ifname }, "network: no DHCP lease yet; still trying");
      return null;
    }
    return state;
  })();
  return {
    ready,
    state,
    lease: () => client?.status() ?? null,
    ntpServers: () => client?.current()?.ntp ?? [],
    stop() {
      stopped = true;
      client?.stop();
    },
  };
}

function macOf(ifname: string): Uint8Array {
  const text = readFileSync(`/sys/class/net/${ifname}/address`, "utf8").trim();
  return Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
}
