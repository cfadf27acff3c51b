// init/: the pure parts of PID 1's boot (command line, labels, DHCP packets,
// /proc parsing, /data layout, kernel.yaml network: as init gets it). The rest is proven in
// the image by test/e2e.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { param, rpcLine, words } from "../../../init/cmdline.ts";
import { probeLabel } from "../../../init/partitions.ts";
import { buildDhcp, DHCPDISCOVER, DHCPACK, leaseFrom, maskToPrefix, parseDhcp } from "../../../init/network.ts";
import { parseStat } from "../../../init/reaper.ts";
import { ensureDataLayout, DATA_LAYOUT } from "../../../init/index.ts";
import { loadKernelConfig, NetworkConfigSchema } from "../../../kernel/config.ts";

describe("command line", () => {
  test("the last aaos.rpc= wins (bootloader words follow the built-in line)", () => {
    const c = "console=ttyS0,115200 quiet aaos.rpc=ttyS0 root=PARTLABEL=AAOS-SYS aaos.rpc=hvc0";
    expect(param(c, "aaos.rpc")).toBe("hvc0");
    expect(rpcLine(c)).toEqual({ device: "/dev/hvc0", baud: undefined });
  });
  test("UARTs default to 115200; an explicit baud is honoured", () => {
    expect(rpcLine("quiet")).toEqual({ device: "/dev/ttyS0", baud: 115200 });
    expect(rpcLine("aaos.rpc=ttyS1,9600")).toEqual({ device: "/dev/ttyS1", baud: 9600 });
  });
  test("quoted words", () => {
    expect(words('a="b c" d')).toEqual(["a=b c", "d"]);
  });
});

describe("file system labels", () => {
  const dir = mkdtempSync(join(tmpdir(), "aaos-labels-"));
  test("FAT", () => {
    const img = join(dir, "cfg.img");
    Bun.spawnSync(["truncate", "-s", "34M", img]);
    const r = Bun.spawnSync(["mkfs.vfat", "-F", "32", "-n", "AAOS-CFG", img]);
    if (r.exitCode !== 0) return; // mkfs.vfat missing: covered by e2e
    expect(probeLabel(new Uint8Array(readFileSync(img).subarray(0, 4096)))).toEqual({ fs: "vfat", label: "AAOS-CFG" });
  });
  test("ext4", () => {
    const img = join(dir, "data.img");
    Bun.spawnSync(["truncate", "-s", "8M", img]);
    const r = Bun.spawnSync(["mkfs.ext4", "-q", "-L", "AAOS-DATA", img]);
    if (r.exitCode !== 0) return;
    expect(probeLabel(new Uint8Array(readFileSync(img).subarray(0, 4096)))).toEqual({ fs: "ext4", label: "AAOS-DATA" });
  });
  test("anything else", () => {
    expect(probeLabel(new Uint8Array(4096))).toBeNull();
  });
});

describe("DHCP", () => {
  const mac = Uint8Array.from([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  test("DISCOVER is a broadcast BOOTREQUEST with our MAC", () => {
    const p = buildDhcp(DHCPDISCOVER, 0xdeadbeef, mac);
    expect(p[0]).toBe(1);
    expect(new DataView(p.buffer).getUint32(4)).toBe(0xdeadbeef);
    expect(new DataView(p.buffer).getUint16(10)).toBe(0x8000);
    expect(Array.from(p.subarray(28, 34))).toEqual(Array.from(mac));
    expect(Array.from(p.subarray(240, 243))).toEqual([53, 1, 1]);
  });
  test("an ACK parses into a lease", () => {
    const p = buildDhcp(DHCPACK, 42, mac, { server: "10.0.2.2" });
    p[0] = 2;
    p.set([10, 0, 2, 15], 16);
    // replace the options with an ACK's
    const opts = [
      53,
      1,
      DHCPACK,
      1,
      4,
      255,
      255,
      255,
      0,
      3,
      4,
      10,
      0,
      2,
      2,
      6,
      8,
      10,
      0,
      2,
      3,
      1,
      1,
      1,
      1,
      51,
      4,
      0,
      1,
      81,
      128,
      54,
      4,
      10,
      0,
      2,
      2,
      255,
    ];
    const q = new Uint8Array(240 + opts.length);
    q.set(p.subarray(0, 240));
    q.set(opts, 240);
    const r = parseDhcp(q)!;
    expect(r.type).toBe(DHCPACK);
    expect(r.xid).toBe(42);
    expect(leaseFrom(r)).toEqual({
      address: "10.0.2.15",
      prefix: 24,
      router: "10.0.2.2",
      dns: ["10.0.2.3", "1.1.1.1"],
      ntp: [],
      server: "10.0.2.2",
      leaseSeconds: 86400,
    });
  });
  test("truncated or foreign packets are refused, not thrown", () => {
    expect(parseDhcp(new Uint8Array(10))).toBeNull();
    const p = buildDhcp(DHCPACK, 1, mac);
    p[0] = 2;
    expect(parseDhcp(p.subarray(0, 245))).toBeNull();
  });
  test("masks", () => {
    expect(maskToPrefix(Uint8Array.from([255, 255, 240, 0]))).toBe(20);
  });
});

describe("kernel.yaml network:", () => {
  test("defaults to DHCP; static needs an address", () => {
    expect(NetworkConfigSchema.parse({}).mode).toBe("dhcp");
    expect(NetworkConfigSchema.safeParse({ mode: "static" }).success).toBe(false);
    expect(
      NetworkConfigSchema.parse({ mode: "static", address: "10.0.2.15/24", gateway: "10.0.2.2", dns: "10.0.2.3" })
        .address,
    ).toBe("10.0.2.15/24");
  });
  test("ntp: host names or IPv4, at most 8, none by default; a mistake is named with its line", () => {
    expect(NetworkConfigSchema.parse({}).ntp).toEqual([]);
    expect(NetworkConfigSchema.parse({ ntp: ["time.cloudflare.com", "10.0.2.2"] }).ntp).toEqual([
      "time.cloudflare.com",
      "10.0.2.2",
    ]);
    expect(NetworkConfigSchema.safeParse({ ntp: ["ntp://pool"] }).success).toBe(false);
    expect(NetworkConfigSchema.safeParse({ ntp: Array(9).fill("10.0.2.2") }).success).toBe(false);
    const dir = mkdtempSync(join(tmpdir(), "aaos-cfg-"));
    writeFileSync(join(dir, "kernel.yaml"), "network:\n  ntp:\n    - pool.ntp.org\n    - -bad host\n");
    expect(() => loadKernelConfig(dir)).toThrow(/network\.ntp\[1\]: expected a host name or an IPv4 address \(line 4/);
  });
  // init mode reads kernel.yaml once, through the kernel (onInvalid: "defaults"), and hands init config.network
  test("from the kernel's one parse of kernel.yaml; a bad file boots on defaults, reported", () => {
    const dir = mkdtempSync(join(tmpdir(), "aaos-cfg-"));
    const load = () => loadKernelConfig(dir, { onInvalid: "defaults" });
    expect(load().config.network).toBeUndefined();
    expect(load().report).toEqual({ source: "defaults", valid: true });
    writeFileSync(join(dir, "kernel.yaml"), "network:\n  mode: static\n  address: 192.168.1.9/24\n");
    expect(load()).toMatchObject({
      config: { network: { mode: "static", address: "192.168.1.9/24" } },
      report: { source: "kernel.yaml", valid: true },
    });
    // a bad network: section: defaults (DHCP), and the reason on the report
    writeFileSync(join(dir, "kernel.yaml"), "network:\n  mode: carrier-pigeon\n");
    let r = load();
    expect(r.config.network).toBeUndefined();
    expect(r.report).toMatchObject({ source: "defaults", valid: false });
    expect(r.report.error).toContain("network.mode");
    writeFileSync(join(dir, "kernel.yaml"), "network: [unclosed\n");
    r = load();
    expect(r.config.network).toBeUndefined();
    expect(r.report.valid).toBe(false);
    // a mistake elsewhere keeps a network: section that is valid on its own, so the appliance stays reachable
    writeFileSync(
      join(dir, "kernel.yaml"),
      "limits:\n  max_agents: lots\nnetwork:\n  mode: static\n  address: 192.168.1.9/24\n",
    );
    r = load();
    expect(r.config.network).toMatchObject({ mode: "static", address: "192.168.1.9/24" });
    expect(r.config.limits.max_agents).toBe(4096);
    expect(r.report).toMatchObject({ source: "defaults", valid: false });
    expect(r.report.error).toMatch(/limits\.max_agents.*line 2/);
    // host mode: the same file is an error
    expect(() => loadKernelConfig(dir)).toThrow(/limits\.max_agents/);
  });
});

test("/proc/PID/stat with spaces and parens in the name", () => {
  expect(parseStat("1234 (a (weird) name) Z 1 1234 1234 0 -1")).toEqual({ pid: 1234, state: "Z", ppid: 1 });
});

test("the /data layout is created once and kept", () => {
  const dir = mkdtempSync(join(tmpdir(), "aaos-data-"));
  expect(ensureDataLayout(dir)).toBe(true);
  for (const d of DATA_LAYOUT) expect(existsSync(join(dir, d))).toBe(true);
  expect(ensureDataLayout(dir)).toBe(false);
});
