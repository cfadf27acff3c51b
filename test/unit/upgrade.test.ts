// The upgrade bundle and the A/B entry logic (kernel/sys/bundle.ts,
// kernel/sys/upgrade.ts) on files: a directory plays the mounted boot
// partition, plain files play the two slots, and the renames systemd-boot
// makes at boot are made here by hand (the e2e test, test/e2e/upgrade.test.ts,
// has the real loader do them under OVMF).
import { afterAll, beforeEach, expect, test } from "bun:test";
import { createHash, generateKeyPairSync } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { BUNDLE_FORMAT, BundleError, BundleReader, encodeHeader, publicKeyFrom } from "../../kernel/sys/bundle.ts";
import { bootEntry, parseEntryName, Upgrader } from "../../kernel/sys/upgrade.ts";

const root = mkdtempSync(join(tmpdir(), "aaos-upgrade-unit-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
function bundle(version: string, kernel: Buffer, sys: Buffer, key?: string): Buffer {
  const header = encodeHeader(
    {
      format: BUNDLE_FORMAT,
      version,
      created_at: new Date().toISOString(),
      files: [
        { name: "bzImage", size: kernel.length, sha256: sha(kernel) },
        { name: "sys.erofs", size: sys.length, sha256: sha(sys) },
      ],
    },
    key,
  );
  return Buffer.concat([header, kernel, sys]);
}
function read(b: Buffer, pub: string | null, chunk = 7) {
  const got: Record<string, Buffer[]> = { bzImage: [], "sys.erofs": [] };
  let signed = false;
  const r = new BundleReader(
    {
      onManifest: (_m, s) => void (signed = s),
      write: (n, _o, d) => got[n]!.push(Buffer.from(d)),
    },
    pub ? publicKeyFrom(pub) : null,
  );
  for (let i = 0; i < b.length; i += chunk) r.push(b.subarray(i, i + chunk));
  return { ...r.finish(), signed, kernel: Buffer.concat(got.bzImage!), sys: Buffer.concat(got["sys.erofs"]!) };
}
const keys = () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    priv: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    pub: publicKey.export({ type: "spki", format: "pem" }) as string,
  };
};

test("a bundle reads back byte for byte in any chunking; a changed byte, a bad or missing signature refuse it", () => {
  const k = Buffer.from("kernel-bytes".repeat(100));
  const s = Buffer.from("erofs-bytes".repeat(1000));
  const b = bundle("1.2.3", k, s);
  const r = read(b, null);
  expect(r.kernel.equals(k)).toBe(true);
  expect(r.sys.equals(s)).toBe(true);
  expect(r.sha256).toBe(sha(b));
  expect(r.signed).toBe(false);

  const bad = Buffer.from(b);
  bad.writeUInt8(bad.readUInt8(bad.length - 5) ^ 1, bad.length - 5);
  expect(() => read(bad, null)).toThrow(/sys.erofs has sha256/);

  const key = keys();
  const signed = bundle("1.2.3", k, s, key.priv);
  expect(read(signed, key.pub, 4096).signed).toBe(true);
  expect(() => read(b, key.pub)).toThrow(/unsigned/);
  expect(() => read(signed, keys().pub)).toThrow(/does not verify/);
  expect(() => read(Buffer.from("NOTABUNDLE-----"), null)).toThrow(BundleError);
});

test("entry names: the counter systemd-boot keeps in them", () => {
  expect(parseEntryName("aaos-1-a.conf")).toEqual({ file: "aaos-1-a.conf", generation: 1, slot: "a" });
  expect(parseEntryName("aaos-12-b+1.conf")).toMatchObject({ generation: 12, slot: "b", tries_left: 1, tries_done: 0 });
  expect(parseEntryName("aaos-12-b+0-1.conf")).toMatchObject({ tries_left: 0, tries_done: 1 });
  expect(parseEntryName("other.conf")).toBeNull();
  expect(bootEntry("b", 4, "9.9")).toContain("options root=PARTLABEL=AAOS-SYS-B aaos.gen=4 panic=10");
});

// --- the A/B cycle on files ----------------------------------------------------------------
let esp = "";
let data = "";
let config = "";
let slotA = "";
let slotB = "";
let audits: any[] = [];
beforeEach(() => {
  const d = mkdtempSync(join(root, "ab-"));
  esp = join(d, "esp");
  data = join(d, "data");
  config = join(d, "config");
  for (const x of [join(esp, "loader/entries"), join(esp, "aaos/a"), data, config]) mkdirSync(x, { recursive: true });
  writeFileSync(join(esp, "loader/entries/aaos-1-a.conf"), bootEntry("a", 1, "1.0"));
  writeFileSync(join(esp, "aaos/a/bzImage"), "k1");
  writeFileSync(join(esp, "aaos/a/slot.json"), JSON.stringify({ slot: "a", version: "1.0", generation: 1 }));
  slotA = join(d, "slot-a");
  slotB = join(d, "slot-b");
  writeFileSync(slotA, "sys1");
  writeFileSync(slotB, "");
  audits = [];
});
const entries = () => readdirSync(join(esp, "loader/entries")).sort();
function booted(slot: "a" | "b", gen: number, version: string) {
  return new Upgrader({
    devices: { boot: null, a: slotA, b: slotB },
    espDir: esp,
    cmdline: `console=ttyS0 root=PARTLABEL=AAOS-SYS-A root=PARTLABEL=AAOS-SYS-${slot.toUpperCase()} aaos.gen=${gen}`,
    dataDir: data,
    configDir: config,
    version,
    bootId: `boot-${slot}-${gen}`,
    audit: async (e) => audits.push(e),
    log: pino({ level: "silent" }),
  });
}
/** what systemd-boot does before it starts an entry with a counter */
function loaderPicks(file: string) {
  const e = parseEntryName(file)!;
  const next = `aaos-${e.generation}-${e.slot}+${e.tries_left! - 1}-${e.tries_done! + 1}.conf`;
  renameSync(join(esp, "loader/entries", file), join(esp, "loader/entries", next));
}
async function upload(u: Upgrader, b: Buffer, chunk = 1000) {
  let r: any;
  for (let off = 0; off < b.length; off += chunk)
    r = await u.chunk({
      sha256: sha(b),
      size: b.length,
      offset: off,
      data: b.subarray(off, off + chunk).toString("base64"),
    });
  return r;
}

test("install → trial → confirm → rollback, and a failed attempt found by the system that came back", async () => {
  const v1 = booted("a", 1, "1.0");
  await v1.atBoot();
  expect(v1.info()).toMatchObject({ loader: "systemd-boot", slot: "a", generation: 1, trial: false, confirmed: true });

  const b2 = bundle("2.0", Buffer.from("k2"), Buffer.from("sys2".repeat(500)));
  const r = await upload(v1, b2);
  expect(r).toMatchObject({ version: "2.0", slot: "b", generation: 2, signed: false, size: b2.length });
  expect(readFileSync(slotB, "utf8")).toBe("sys2".repeat(500));
  expect(readFileSync(join(esp, "aaos/b/bzImage"), "utf8")).toBe("k2");
  expect(entries()).toEqual(["aaos-1-a.conf", "aaos-2-b+1.conf"]);
  expect(audits.map((a) => a.kind)).toEqual(["upgrade.install"]);

  // the loader tries it; v2 comes up and confirms itself
  loaderPicks("aaos-2-b+1.conf");
  const v2 = booted("b", 2, "2.0");
  await v2.atBoot();
  expect(v2.info()).toMatchObject({ trial: true, confirmed: false });
  await expect(upload(v2, b2)).rejects.toThrow(/trial/);
  await v2.confirm();
  expect(entries()).toEqual(["aaos-1-a.conf", "aaos-2-b.conf"]);
  expect(v2.info().last_attempt).toMatchObject({ outcome: "confirmed", version: "2.0", from: { version: "1.0" } });

  // rollback: slot A again, as generation 3 with one try
  const rb = await v2.rollback();
  expect(rb).toEqual({ slot: "a", generation: 3, version: "1.0" });
  expect(entries()).toEqual(["aaos-2-b.conf", "aaos-3-a+1.conf"]);
  loaderPicks("aaos-3-a+1.conf");
  const back = booted("a", 3, "1.0");
  await back.atBoot();
  await back.confirm();
  expect(entries()).toEqual(["aaos-2-b.conf", "aaos-3-a.conf"]);

  // a new system (into B, replacing 2.0) that never confirms: the loader spent its try,
  // booted the previous entry; the system that came back records the failed attempt
  const b4 = bundle("4.0", Buffer.from("k4"), Buffer.from("sys4"));
  expect(await upload(back, b4)).toMatchObject({ slot: "b", generation: 4 });
  expect(entries()).toEqual(["aaos-3-a.conf", "aaos-4-b+1.conf"]);
  loaderPicks("aaos-4-b+1.conf"); // tried once, never confirmed
  const again = booted("a", 3, "1.0");
  await again.atBoot();
  expect(entries()).toEqual(["aaos-3-a.conf"]);
  expect(again.info().last_attempt).toMatchObject({ outcome: "failed", version: "4.0", slot: "b", generation: 4 });
  expect(audits.at(-1)).toMatchObject({ kind: "upgrade.fallback", version: "4.0", slot: "b", generation: 4 });
  await expect(again.rollback()).rejects.toThrow(/nothing to roll back to/);
});

test("a bad bundle installs nothing; the slot being overwritten loses its entry once the header checks out", async () => {
  const v1 = booted("a", 1, "1.0");
  await v1.atBoot();
  const b = bundle("2.0", Buffer.from("k2"), Buffer.from("sys2"));
  const bad = Buffer.from(b);
  bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
  await expect(v1.chunk({ sha256: sha(b), size: bad.length, offset: 0, data: bad.toString("base64") })).rejects.toThrow(
    /sys.erofs has sha256/,
  );
  expect(entries()).toEqual(["aaos-1-a.conf"]);
  expect(existsSync(join(esp, "aaos/b/bzImage"))).toBe(false);
  expect(audits.map((a) => a.kind)).toEqual(["upgrade.refused"]);
  // a chunk out of order
  await v1.chunk({ sha256: sha(b), size: b.length, offset: 0, data: b.subarray(0, 10).toString("base64") });
  await expect(
    v1.chunk({ sha256: sha(b), size: b.length, offset: 20, data: b.subarray(20, 30).toString("base64") }),
  ).rejects.toThrow(/expected offset 10/);

  // with upgrade.pub on the config partition, an unsigned bundle is refused at its header: the other
  // slot's entry (the rollback target) stays
  writeFileSync(join(esp, "loader/entries/aaos-0-b.conf"), bootEntry("b", 0, "0.9"));
  const key = keys();
  writeFileSync(join(config, "upgrade.pub"), key.pub);
  await expect(upload(v1, b)).rejects.toThrow(/unsigned/);
  expect(entries()).toEqual(["aaos-0-b.conf", "aaos-1-a.conf"]);
  const signed = bundle("2.0", Buffer.from("k2"), Buffer.from("sys2"), key.priv);
  expect(await upload(v1, signed)).toMatchObject({ signed: true, version: "2.0" });
});
