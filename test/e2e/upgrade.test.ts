// A/B upgrade and rollback on the real image under OVMF (docs/operations.md
// "Upgrade and rollback"), in one QEMU run, six guest boots (then a second
// run: the chunked install over hvc0):
//   1. v1 (out/aaos.img, slot A): files and audit records written
//   2. system.upgrade {url, sha256}: a v2 bundle (`make upgrade-bundle` with
//      another AAOS_VERSION, signed: AAOS-CFG holds upgrade.pub) served by a
//      Bun HTTP server on the host, reached
//      through QEMU's user-mode network at 10.0.2.2; v2 comes up from slot B,
//      confirms itself; the files and the audit chain are intact
//   2b. system.rollback to v1 and back to v2, each booted and confirmed
//   3. a broken v3 (its kernel binary exits at once: PID 1 dies, the kernel
//      panics, panic=10 reboots), over HTTP again (an unsigned copy refused
//      first); before it, the first chunks
//      of v3 over the RPC line (the UART) measure that path's rate
//   4. systemd-boot's counter for v3 is spent: v2 comes back by itself and
//      system.info reports the failed attempt
// Then the GPT is the one we started with: AAOS-CFG and AAOS-DATA never moved.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootVM, ROOT, type VM } from "../../qemu/harness.ts";
import { checkDataFs, cleanupDisks, gptPartitions, imageArtifacts, makeDisk, OUT } from "../../qemu/disk.ts";

let vm: VM | null = null;
let dir = "";
let server: ReturnType<typeof Bun.serve> | null = null;
const timings: Record<string, number | string> = {};

afterAll(() => {
  vm?.kill();
  server?.stop(true);
  cleanupDisks();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log("upgrade timings:", JSON.stringify(timings));
});

function run(argv: string[], env: Record<string, string> = {}): string {
  const r = Bun.spawnSync(argv, { cwd: ROOT, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

/** a bundle of the built Linux with the system built at another version (OUT=dir: its own kernel binary) */
function bundleAt(version: string, sub: string, key: string): { path: string; sha256: string } {
  const o = join(dir, sub);
  mkdirSync(o, { recursive: true });
  // the same Linux: a copy newer than its sources, so make does not rebuild it
  copyFileSync(join(OUT, "bzImage"), join(o, "bzImage"));
  const t0 = performance.now();
  run([
    "make",
    "--no-print-directory",
    "upgrade-bundle",
    `OUT=${o}`,
    `AAOS_VERSION=${version}`,
    `AAOS_UPGRADE_KEY=${key}`,
  ]);
  timings[`bundle_build_${sub}_ms`] = Math.round(performance.now() - t0);
  const path = join(o, "aaos-upgrade.bundle");
  return { path, sha256: readFileSync(path + ".sha256", "utf8").slice(0, 64) };
}

/** v3: the same layout, but the kernel binary is a program that exits at once */
let v3cache: { path: string; sha256: string } | null = null;
const v3version = "0.0.0-broken3";
function brokenBundle(signed = true): { path: string; sha256: string } {
  if (v3cache && signed) return v3cache;
  const version = v3version;
  const o = join(dir, "v3");
  mkdirSync(o, { recursive: true });
  writeFileSync(join(o, "exit.c"), "int main(void) { return 3; }\n");
  // linked against glibc like the real one (mkrootfs.sh checks the libraries it needs)
  run(["gcc", "-Os", "-s", "-o", join(o, "aaos-kernel"), join(o, "exit.c")]);
  run(["image/mkrootfs.sh", join(o, "aaos-kernel"), join(OUT, "stage0"), join(o, "sys.erofs")]);
  const path = join(o, signed ? "aaos-upgrade.bundle" : "unsigned.bundle");
  run([
    join(ROOT, "node_modules/.bin/bun"),
    "image/mkbundle.ts",
    "--bzimage",
    join(OUT, "bzImage"),
    "--sys",
    join(o, "sys.erofs"),
    "--version",
    version,
    ...(signed ? ["--key", join(keyDir, "upgrade.key")] : []),
    "--out",
    path,
  ]);
  const b = { path, sha256: readFileSync(path + ".sha256", "utf8").slice(0, 64) };
  if (signed) v3cache = b;
  return b;
}

let v1 = "";
let disk = "";
let v2: { path: string; sha256: string };

let keyDir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "aaos-upgrade-"));
  // v1: make image's pieces, with the public half of a signing key on AAOS-CFG (upgrade.pub)
  keyDir = join(dir, "key");
  run([join(ROOT, "node_modules/.bin/bun"), "image/mkbundle.ts", "--keygen", keyDir]);
  disk = makeDisk(
    { "upgrade.pub": readFileSync(join(keyDir, "upgrade.pub"), "utf8") },
    {
      out: join(dir, "aaos.img"),
      base: join(ROOT, "image/config"),
      version: readFileSync(join(OUT, "version.stamp"), "utf8").trim(),
      dataMb: null,
    },
  );
});

const agentManifest = `name: keeper
model: claude-haiku-4-5-20251001
capabilities:
  - "file_write: /data/files/*"
  - "file_read: /data/files/*"
`;

test("v1 → signed v2 over HTTP keeps files and the audit chain; a broken v3 falls back to v2 by itself", async () => {
  const tAll = Date.now();
  const gptBefore = gptPartitions(disk);
  vm = await bootVM({ image: disk, uefi: true, memoryMb: 1024 });
  const r1 = await vm.waitForReady(300_000);
  v1 = r1.params.version;
  timings.boot_v1_ms = r1.ms;
  const info1 = await vm.call("system.info");
  expect(info1.upgrade).toMatchObject({
    loader: "systemd-boot",
    slot: "a",
    generation: 1,
    trial: false,
    confirmed: true,
  });
  expect(info1.upgrade.slots.a).toMatchObject({ version: v1, entry: "aaos-1-a.conf" });

  // files and audit records on v1
  const ag = await vm.call("agent.spawn", { manifest: agentManifest });
  await vm.call("tool.invoke", {
    agent_id: ag.agent_id,
    tool: "file_write",
    input: { path: "/data/files/before-upgrade.txt", content: `written by ${v1}\n` },
  });
  const verify1 = await vm.call("audit.verify");
  expect(verify1.ok).toBe(true);

  // v2: a bundle of another version, served on the host, fetched by the guest at 10.0.2.2
  const v2version = `${v1}-upgrade2`;
  v2 = bundleAt(v2version, "v2", join(keyDir, "upgrade.key"));
  timings.bundle_bytes = statSync(v2.path).size;
  const bundleFile = v2.path;
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(Bun.file(bundleFile)) });
  const url = `http://10.0.2.2:${server.port}/aaos-upgrade.bundle`;
  const t0 = Date.now();
  const up = await vm.call("system.upgrade", { url, sha256: v2.sha256 }, 1_800_000);
  timings.upgrade_call_ms = Date.now() - t0;
  Object.assign(
    timings,
    Object.fromEntries(Object.entries(up.timings_ms).map(([k, v]) => [`v2_${k}_ms`, v as number])),
  );
  expect(up).toMatchObject({ version: v2version, slot: "b", generation: 2, signed: true, rebooting: true });
  const tReboot = Date.now();
  const r2 = await vm.waitForReady(300_000);
  timings.reboot_to_v2_ready_ms = Date.now() - tReboot;
  expect(r2.params.version).toBe(v2version);
  const info2 = await vm.call("system.info");
  expect(info2.version).toBe(v2version);
  expect(info2.upgrade).toMatchObject({
    loader: "systemd-boot",
    slot: "b",
    generation: 2,
    trial: true,
    confirmed: true,
  });
  expect(info2.upgrade.slots.b).toMatchObject({ version: v2version, entry: "aaos-2-b.conf" });
  expect(info2.upgrade.slots.a).toMatchObject({ version: v1, entry: "aaos-1-a.conf" });
  expect(info2.upgrade.last_attempt).toMatchObject({ outcome: "confirmed", version: v2version, slot: "b" });
  // the data disk came through: the file, the chain, v1's records in it
  const ag2 = await vm.call("agent.spawn", { manifest: agentManifest });
  const read = await vm.call("tool.invoke", {
    agent_id: ag2.agent_id,
    tool: "file_read",
    input: { path: "/data/files/before-upgrade.txt" },
  });
  expect(JSON.stringify(read.output)).toContain(`written by ${v1}`);
  const verify2 = await vm.call("audit.verify");
  expect(verify2.ok).toBe(true);
  expect(verify2.events).toBeGreaterThan(verify1.events);
  // v1's head is still in the chain, at its place
  const seq1 = verify1.anchor.seq;
  const around = await vm.call("audit.query", { since_seq: Math.max(0, seq1 - 1), limit: 3 });
  const at = around.events.find((e: any) => e.seq === seq1);
  expect(at?.hash).toBe(verify1.head);
  const kinds = (await vm.call("audit.query", { kind: "upgrade.*", limit: 100 })).events.map((r: any) => r.kind);
  expect(kinds).toEqual(["upgrade.install", "upgrade.confirm"]);
  const boots = (await vm.call("audit.query", { kind: "system.boot", limit: 100 })).events.map((r: any) => r.version);
  expect(boots).toEqual([v1, v2version]);

  // system.rollback, both ways, each a one-try boot that confirms itself:
  // v2 → v1 (slot A, generation 3) → v2 (slot B, generation 4); the data disk goes along
  const rb1 = await vm.call("system.rollback", {});
  expect(rb1).toEqual({ slot: "a", generation: 3, version: v1, rebooting: true });
  const tRb = Date.now();
  expect((await vm.waitForReady(300_000)).params.version).toBe(v1);
  timings.rollback_to_ready_ms = Date.now() - tRb;
  const info3 = (await vm.call("system.info")).upgrade;
  expect(info3).toMatchObject({ slot: "a", generation: 3, trial: true, confirmed: true });
  expect([info3.slots.a.entry, info3.slots.b.entry]).toEqual(["aaos-3-a.conf", "aaos-2-b.conf"]);
  expect(info3.last_attempt).toMatchObject({ outcome: "confirmed", version: v1, from: { version: v2version } });
  const ag3 = await vm.call("agent.spawn", { manifest: agentManifest });
  const read3 = await vm.call("tool.invoke", {
    agent_id: ag3.agent_id,
    tool: "file_read",
    input: { path: "/data/files/before-upgrade.txt" },
  });
  expect(JSON.stringify(read3.output)).toContain(`written by ${v1}`);
  expect((await vm.call("audit.verify")).ok).toBe(true);
  expect(await vm.call("system.rollback", {})).toEqual({
    slot: "b",
    generation: 4,
    version: v2version,
    rebooting: true,
  });
  expect((await vm.waitForReady(300_000)).params.version).toBe(v2version);
  expect((await vm.call("system.info")).upgrade).toMatchObject({ slot: "b", generation: 4, confirmed: true });

  // the RPC line takes a bundle in chunks too: its rate over this UART, on the first chunks of v3
  // (the whole chunked install is the second test, over hvc0: at this rate v3 would take half an hour)
  const v3 = brokenBundle();
  const bytes = readFileSync(v3.path);
  const CHUNK = 64 * 1024;
  const tUp = Date.now();
  for (let off = 0; off < 3 * CHUNK; off += CHUNK) {
    const r = await vm.call(
      "system.upgrade",
      { sha256: v3.sha256, size: bytes.length, offset: off, data: bytes.subarray(off, off + CHUNK).toString("base64") },
      600_000,
    );
    expect(r).toEqual({ received: off + CHUNK, size: bytes.length });
  }
  timings.ttyS0_upload_bytes_per_s = Math.round((3 * CHUNK) / ((Date.now() - tUp) / 1000));
  expect((await vm.call("system.info")).upgrade.in_progress).toEqual({
    source: "rpc",
    received: 3 * CHUNK,
    size: bytes.length,
  });

  // the upload's header checked out: the slot it overwrites (v1's) lost its entry
  expect((await vm.call("system.info")).upgrade.slots.a.entry).toBeUndefined();

  // v3, broken, over HTTP (the abandoned upload gives way); unsigned first: AAOS-CFG has upgrade.pub, so refused
  timings.v3_bundle_bytes = bytes.length;
  const unsigned = brokenBundle(false);
  const files: Record<string, string> = { "/aaos-upgrade.bundle": v3.path, "/unsigned.bundle": unsigned.path };
  server.stop(true);
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => new Response(Bun.file(files[new URL(req.url).pathname]!)),
  });
  await expect(
    vm.call("system.upgrade", { url: `http://10.0.2.2:${server.port}/unsigned.bundle`, sha256: unsigned.sha256 }),
  ).rejects.toMatchObject({ code: -32602, message: expect.stringContaining("unsigned") });
  expect((await vm.call("system.info")).upgrade.slots.b.entry).toBe("aaos-4-b.conf");
  const last = await vm.call(
    "system.upgrade",
    { url: `http://10.0.2.2:${server.port}/aaos-upgrade.bundle`, sha256: v3.sha256 },
    1_800_000,
  );
  expect(last).toMatchObject({ version: v3version, slot: "a", generation: 5, rebooting: true });

  // v3 dies at boot; the loader's counter for it is spent; v2 comes back by itself
  const tFall = Date.now();
  const r4 = await vm.waitForReady(600_000);
  timings.fallback_to_v2_ready_ms = Date.now() - tFall;
  expect(r4.params.version).toBe(v2version);
  expect(vm.consoleLog()).toContain("Attempted to kill init");
  const info4 = await vm.call("system.info");
  expect(info4.upgrade).toMatchObject({ slot: "b", generation: 4, trial: false, confirmed: true });
  expect(info4.upgrade.last_attempt).toMatchObject({ outcome: "failed", version: v3version, slot: "a", generation: 5 });
  expect(info4.upgrade.slots.a.entry).toBeUndefined();
  const kinds4 = (await vm.call("audit.query", { kind: "upgrade.*", limit: 100 })).events.map((r: any) => r.kind);
  expect(kinds4).toEqual([
    "upgrade.install",
    "upgrade.confirm",
    "upgrade.rollback",
    "upgrade.confirm",
    "upgrade.rollback",
    "upgrade.confirm",
    "upgrade.refused",
    "upgrade.install",
    "upgrade.fallback",
  ]);
  timings.total_e2e_ms = Date.now() - tAll;
  expect((await vm.call("audit.verify")).ok).toBe(true);
  // nothing to roll back to: slot A holds the system that failed
  await expect(vm.call("system.rollback", {})).rejects.toMatchObject({ code: -32602 });

  expect(await vm.powerOff(120_000)).toBe(0);
  vm = null;
  const gptAfter = gptPartitions(disk);
  expect(gptAfter).toEqual(gptBefore);
  expect(gptAfter.map((p) => p.name)).toEqual(["AAOS-BOOT", "AAOS-SYS-A", "AAOS-SYS-B", "AAOS-CFG", "AAOS-DATA"]);
  expect(checkDataFs(disk).fsckOk).toBe(true);
}, 3_600_000);

// The whole bundle over the RPC line, for a machine without a network: the virtio console (hvc0) with the
// kernel booted directly (no loader: the entry is written, not booted), v3 in 512 KiB chunks, no reboot.
test("system.upgrade in chunks over hvc0 writes the inactive slot and its one-try entry", async () => {
  const d2 = join(dir, "hvc0.img");
  copyFileSync(imageArtifacts().image, d2);
  const v3 = brokenBundle();
  const bytes = readFileSync(v3.path);
  // root=: the slot a direct boot uses (the fragment's built-in line says the same)
  vm = await bootVM({
    image: d2,
    kernel: join(OUT, "bzImage"),
    rpc: "hvc0",
    append: "root=PARTLABEL=AAOS-SYS-A",
    noNetwork: true,
  });
  await vm.waitForReady(300_000);
  expect((await vm.call("system.info")).upgrade).toMatchObject({ loader: "direct", slot: "a", generation: null });
  const CHUNK = 512 * 1024;
  const t0 = Date.now();
  let last: any = null;
  for (let off = 0; off < bytes.length; off += CHUNK)
    last = await vm.call(
      "system.upgrade",
      {
        sha256: v3.sha256,
        size: bytes.length,
        offset: off,
        data: bytes.subarray(off, off + CHUNK).toString("base64"),
        reboot: false,
      },
      600_000,
    );
  timings.hvc0_upload_ms = Date.now() - t0;
  timings.hvc0_upload_bytes_per_s = Math.round(bytes.length / ((Date.now() - t0) / 1000));
  expect(last).toMatchObject({
    version: v3version,
    slot: "b",
    generation: 2,
    signed: false,
    size: bytes.length,
    rebooting: false,
  });
  const info = (await vm.call("system.info")).upgrade;
  expect(info.slots.b).toMatchObject({ version: v3version, entry: "aaos-2-b+1.conf", tries_left: 1 });
  expect(info.slots.a.entry).toBe("aaos-1-a.conf");
  expect(info.last_attempt).toMatchObject({ outcome: "installed", source: "rpc", version: v3version });
  // a changed byte: refused, audited, nothing boots it
  const bad = Buffer.from(bytes);
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
  await expect(
    vm
      .call("system.upgrade", {
        sha256: v3.sha256,
        size: bad.length,
        offset: 0,
        data: bad.subarray(0, CHUNK).toString("base64"),
      })
      .then(async () => {
        for (let off = CHUNK; off < bad.length; off += CHUNK)
          await vm!.call(
            "system.upgrade",
            {
              sha256: v3.sha256,
              size: bad.length,
              offset: off,
              data: bad.subarray(off, off + CHUNK).toString("base64"),
            },
            600_000,
          );
      }),
  ).rejects.toMatchObject({ code: -32602 });
  const after = (await vm.call("system.info")).upgrade;
  expect(after.slots.b.entry).toBeUndefined();
  const kinds = (await vm.call("audit.query", { kind: "upgrade.*", limit: 10 })).events.map((r: any) => r.kind);
  expect(kinds).toEqual(["upgrade.install", "upgrade.refused"]);
  expect(await vm.powerOff(120_000)).toBe(0);
  vm = null;
}, 1_800_000);
