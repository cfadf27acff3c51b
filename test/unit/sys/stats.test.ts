// system.stats' network and clock parts as init mode fills them (init/dhcp.ts's
// lease, init/time.ts's sync state), and as host mode leaves them.
import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { systemStats, type ClockSyncStatus, type LeaseStatus } from "../../../kernel/sys/stats.ts";

const dir = mkdtempSync(join(tmpdir(), "aaos-stats-"));

const clock: ClockSyncStatus = {
  synced: true,
  servers: ["10.0.2.2", "pool.ntp.org"],
  server: "10.0.2.2",
  stratum: 2,
  offset_ms: 0.4,
  delay_ms: 1.2,
  last_sync: "2026-12-01T21:00:00.000Z",
  last_step: { at: "2026-12-01T20:30:00.000Z", offset_ms: 3600000 },
};

test("host mode: the host's clock, not synchronised by the kernel; no lease", () => {
  const s = systemStats(dir, Date.now());
  expect(Object.keys(s.clock).sort()).toEqual(["now", "source", "synced"]);
  expect(s.clock).toMatchObject({ synced: false, source: "rtc" });
  for (const n of s.network) expect(n.dhcp).toBeUndefined();
});

test("init mode: the SNTP state in clock; source sntp only while synced", () => {
  const s = systemStats(dir, Date.now(), { interface: null, dhcp: null, clock });
  expect(s.clock).toMatchObject({ ...clock, source: "sntp" });
  expect(Math.abs(Date.parse(s.clock.now) - Date.now())).toBeLessThan(1000);
  const lost = systemStats(dir, Date.now(), {
    interface: null,
    dhcp: null,
    clock: { ...clock, synced: false, error: "10.0.2.2: no answer" },
  });
  expect(lost.clock).toMatchObject({ synced: false, source: "rtc", error: "10.0.2.2: no answer" });
});

test("init mode: the lease rides on the address DHCP gave, and on no other", () => {
  const v4 = Object.entries(networkInterfaces()).flatMap(([name, as]) =>
    (as ?? []).filter((a) => !a.internal && a.family === "IPv4").map((a) => ({ name, address: a.address })),
  );
  if (v4.length === 0) return; // no external IPv4 address on this machine
  const { name, address } = v4[0]!;
  const dhcp: LeaseStatus = {
    state: "bound",
    address,
    server: "10.0.2.2",
    lease_seconds: 86400,
    obtained: "2026-12-01T21:00:00.000Z",
    expires: "2026-12-02T21:00:00.000Z",
    t1: "2026-12-02T09:00:00.000Z",
    t2: "2026-12-02T18:00:00.000Z",
    last_renewal: null,
    renewals: 0,
  };
  const s = systemStats(dir, Date.now(), { interface: name, dhcp, clock });
  const withLease = s.network.filter((n) => n.dhcp);
  expect(withLease).toHaveLength(1);
  expect(withLease[0]).toMatchObject({ interface: name, family: "IPv4", dhcp });
  expect(withLease[0]!.address.startsWith(address + "/")).toBe(true);
});
