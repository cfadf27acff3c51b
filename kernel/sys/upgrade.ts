// A/B upgrade and rollback (docs/operations.md "Upgrade and rollback",
// docs/design.md for why systemd-boot's boot counting).
//
// The boot partition (AAOS-BOOT, FAT) holds systemd-boot, one kernel per slot
// (aaos/a/bzImage, aaos/b/bzImage) and at most one Boot Loader Specification
// entry per slot: loader/entries/aaos-GEN-SLOT[+LEFT[-DONE]].conf. systemd-boot
// boots the highest generation whose counter is not exhausted, and before it
// starts a counted entry it renames it (+1 → +0-1). So:
//   install   write the inactive slot and its kernel, then an entry of the next
//             generation with one try (+1); reboot
//   confirm   the new system reached system.ready: rename its entry to drop the
//             counter (it is now the default for good)
//   fallback  it did not (it died, hung and was power-cycled, panicked: panic=10
//             reboots): its entry is +0-1, sorts last, the old one boots; the
//             old system finds it, records the failed attempt, removes it
//   rollback  the other slot's entry again, as the next generation with one try
// The running slot's entry is never touched by an install: it is what comes back.
import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
  constants as fsc,
} from "node:fs";
import { basename, join } from "node:path";
import type { Logger } from "pino";
import { BundleError, BundleReader, publicKeyFrom, type BundleManifest } from "./bundle.ts";
import { mount, sync, umount, MS_NODEV, MS_NOEXEC, MS_NOSUID } from "./mount.ts";
import { libc } from "./libc.ts";
import { ErrorCode, KernelError } from "../errors.ts";
import type { AuditEventInput } from "../services.ts";

export type Slot = "a" | "b";
const ENTRY_RE = /^aaos-(\d+)-([ab])(?:\+(\d+)(?:-(\d+))?)?\.conf$/;
const HISTORY_MAX = 32;
/** _IO(0x12, 97): flush and invalidate a block device's buffer cache */
const BLKFLSBUF = 0x1261n;
/** the public key an upgrade bundle's signature is checked against, on AAOS-CFG */
export const UPGRADE_PUBLIC_KEY = "upgrade.pub";

export interface BootEntry {
  file: string;
  generation: number;
  slot: Slot;
  /** absent: confirmed (no boot counter) */
  tries_left?: number;
  tries_done?: number;
}

export function parseEntryName(file: string): BootEntry | null {
  const m = ENTRY_RE.exec(file);
  if (!m) return null;
  const e: BootEntry = { file, generation: Number(m[1]), slot: m[2] as Slot };
  if (m[3] !== undefined) {
    e.tries_left = Number(m[3]);
    e.tries_done = Number(m[4] ?? 0);
  }
  return e;
}

/** the entry PID 1's boot partition gets (image/mkdisk.sh writes generation 1 the same way) */
export function bootEntry(slot: Slot, generation: number, version: string): string {
  return [
    `title aaOS ${version} (slot ${slot})`,
    "sort-key aaos",
    `version ${generation}`,
    `linux /aaos/${slot}/bzImage`,
    `options root=PARTLABEL=AAOS-SYS-${slot.toUpperCase()} aaos.gen=${generation} panic=10`,
    "",
  ].join("\n");
}

export interface SlotInfo {
  version?: string;
  generation?: number;
  sys_sha256?: string;
  kernel_sha256?: string;
  installed_at?: string;
}

export interface Attempt {
  at: string;
  boot_id: string;
  outcome: "installed" | "confirmed" | "failed" | "rollback";
  slot: Slot;
  generation: number;
  version?: string;
  from?: { slot: Slot; version: string; generation: number | null };
  source?: "url" | "rpc";
  sha256?: string;
}

export interface UpgradeInfo {
  /** systemd-boot: booted through a boot entry; direct: a kernel booted without one (QEMU -kernel) */
  loader: "systemd-boot" | "direct";
  slot: Slot;
  generation: number | null;
  /** this boot is an entry's one try, not yet confirmed */
  trial: boolean;
  confirmed: boolean;
  slots: Record<Slot, SlotInfo & { entry?: string; tries_left?: number }>;
  /** what the last upgrade or rollback came to (a failed one is found by the system that came back) */
  last_attempt: Attempt | null;
  /** an upgrade or chunked upload in progress */
  in_progress: { source: "url" | "rpc"; received: number; size?: number } | null;
}

export interface UpgradeOptions {
  /** the devices by partition name; null: not found */
  devices: { boot: string | null; a: string | null; b: string | null };
  /** the kernel command line (root=PARTLABEL=AAOS-SYS-X, aaos.gen=N) */
  cmdline: string;
  dataDir: string;
  configDir: string;
  version: string;
  bootId: string;
  audit(e: AuditEventInput): Promise<unknown>;
  log: Logger;
  /** where the boot partition is mounted while it is changed (default /run/aaos-boot) */
  espMount?: string;
  /** an already mounted boot partition (tests): never mounted or unmounted here */
  espDir?: string;
}

export interface InstallResult {
  version: string;
  slot: Slot;
  generation: number;
  signed: boolean;
  sha256: string;
  size: number;
  timings_ms: { transfer: number; verify: number; boot_partition: number };
}

function cmdParam(cmdline: string, key: string): string | undefined {
  let v: string | undefined;
  for (const w of cmdline.split(/\s+/)) if (w.startsWith(key + "=")) v = w.slice(key.length + 1);
  return v;
}

function blockSize(dev: string): number | null {
  try {
    return Number(readFileSync(`/sys/class/block/${basename(dev)}/size`, "utf8").trim()) * 512;
  } catch {
    return null;
  }
}

export class Upgrader {
  readonly slot: Slot;
  readonly generation: number | null;
  private trial = false;
  private confirmed = true;
  private loader: "systemd-boot" | "direct" = "direct";
  private busy: { source: "url" | "rpc"; received: number; size?: number } | null = null;
  private chunked: { sha256: string; size: number; install: Install } | null = null;
  private readonly statePath: string;

  constructor(private o: UpgradeOptions) {
    const root = cmdParam(o.cmdline, "root") ?? "";
    this.slot = /AAOS-SYS-B$/i.test(root) ? "b" : "a";
    const g = Number(cmdParam(o.cmdline, "aaos.gen"));
    this.generation = Number.isSafeInteger(g) && g > 0 ? g : null;
    this.statePath = join(o.dataDir, "upgrade", "state.json");
  }

  get other(): Slot {
    return this.slot === "a" ? "b" : "a";
  }

  // --- the boot partition ------------------------------------------------------------------

  private withEsp<T>(f: (dir: string) => T): T {
    if (this.o.espDir) {
      const r = f(this.o.espDir);
      this.readSlots(this.o.espDir);
      return r;
    }
    const dev = this.o.devices.boot;
    if (!dev) throw new KernelError(ErrorCode.InternalError, "no AAOS-BOOT partition: cannot change the boot entries");
    const dir = this.o.espMount ?? "/run/aaos-boot";
    mkdirSync(dir, { recursive: true });
    mount(dev, dir, "vfat", MS_NOSUID | MS_NODEV | MS_NOEXEC, "utf8=1,shortname=mixed,fmask=0077,dmask=0077");
    try {
      const r = f(dir);
      this.readSlots(dir);
      return r;
    } finally {
      sync();
      try {
        umount(dir);
      } catch (err) {
        this.o.log.error({ err }, "upgrade: cannot unmount the boot partition");
      }
    }
  }

  private entries(dir: string): BootEntry[] {
    const d = join(dir, "loader", "entries");
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .map(parseEntryName)
      .filter((e): e is BootEntry => e !== null);
  }

  private slotInfo(dir: string, slot: Slot): SlotInfo {
    try {
      return JSON.parse(readFileSync(join(dir, "aaos", slot, "slot.json"), "utf8"));
    } catch {
      return {};
    }
  }

  // --- state on the data disk --------------------------------------------------------------

  private history(): Attempt[] {
    try {
      return JSON.parse(readFileSync(this.statePath, "utf8")).history ?? [];
    } catch {
      return [];
    }
  }

  private record(a: Attempt): void {
    const h = [...this.history(), a].slice(-HISTORY_MAX);
    mkdirSync(join(this.o.dataDir, "upgrade"), { recursive: true });
    const tmp = this.statePath + ".tmp";
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeSync(fd, JSON.stringify({ history: h }, null, 1) + "\n");
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.statePath);
  }

  private audit(e: Omit<AuditEventInput, "agent_id">): Promise<unknown> {
    return this.o
      .audit({ agent_id: null, ...e } as AuditEventInput)
      .catch((err) => this.o.log.error({ err, kind: e.kind }, "upgrade: not audited"));
  }

  // --- boot: find a failed attempt; confirm ourselves once ready ------------------------------

  /** At boot, before serving: is this a trial, and did an attempt fail (we are what came back)? */
  async atBoot(): Promise<void> {
    if (!this.o.devices.boot && !this.o.espDir) return;
    if (this.generation === null) {
      // booted without an entry (QEMU -kernel): nothing to confirm, but system.info shows the slots
      try {
        this.withEsp(() => {});
      } catch (err) {
        this.o.log.error({ err }, "upgrade: cannot read the boot partition");
      }
      return;
    }
    const failed: { e: BootEntry; info: SlotInfo }[] = [];
    try {
      this.withEsp((dir) => {
        const all = this.entries(dir);
        const mine = all.find((e) => e.generation === this.generation && e.slot === this.slot);
        if (!mine) return;
        this.loader = "systemd-boot";
        this.trial = mine.tries_left !== undefined;
        this.confirmed = !this.trial;
        for (const e of all) {
          if (e === mine || e.tries_left !== 0 || e.generation < this.generation!) continue;
          failed.push({ e, info: this.slotInfo(dir, e.slot) });
          rmSync(join(dir, "loader", "entries", e.file), { force: true });
        }
      });
    } catch (err) {
      this.o.log.error({ err }, "upgrade: cannot read the boot entries");
      return;
    }
    for (const { e, info } of failed) {
      const a: Attempt = {
        at: new Date().toISOString(),
        boot_id: this.o.bootId,
        outcome: "failed",
        slot: e.slot,
        generation: e.generation,
        version: info.version,
        from: { slot: this.slot, version: this.o.version, generation: this.generation },
      };
      this.safeRecord(a);
      this.o.log.error({ attempt: a }, "upgrade: the new system did not confirm itself; booted the previous one");
      await this.audit({
        kind: "upgrade.fallback",
        slot: e.slot,
        generation: e.generation,
        version: info.version ?? null,
        booted: { slot: this.slot, version: this.o.version, generation: this.generation },
      });
    }
  }

  /** Once serving (system.ready): a trial boot makes itself the default. */
  async confirm(): Promise<void> {
    if (!this.trial || this.confirmed) return;
    try {
      this.withEsp((dir) => {
        const mine = this.entries(dir).find((e) => e.generation === this.generation && e.slot === this.slot);
        if (!mine) throw new Error("the booted entry is gone");
        const d = join(dir, "loader", "entries");
        renameSync(join(d, mine.file), join(d, `aaos-${mine.generation}-${mine.slot}.conf`));
      });
    } catch (err) {
      this.o.log.error({ err }, "upgrade: cannot confirm this boot; the next boot falls back");
      return;
    }
    this.confirmed = true;
    const prev = this.history().at(-1);
    this.safeRecord({
      at: new Date().toISOString(),
      boot_id: this.o.bootId,
      outcome: "confirmed",
      slot: this.slot,
      generation: this.generation!,
      version: this.o.version,
      ...(prev?.from && prev.generation === this.generation ? { from: prev.from } : {}),
    });
    await this.audit({
      kind: "upgrade.confirm",
      slot: this.slot,
      generation: this.generation,
      version: this.o.version,
      from: prev?.generation === this.generation ? (prev.from ?? null) : null,
    });
  }

  private safeRecord(a: Attempt): void {
    try {
      this.record(a);
    } catch (err) {
      this.o.log.error({ err }, "upgrade: cannot write the upgrade state on the data disk");
    }
  }

  /** what the boot partition says of each slot, as of the last time it was mounted (system.info reads this) */
  private slots: UpgradeInfo["slots"] = { a: {}, b: {} };

  private readSlots(dir: string): void {
    const slots: UpgradeInfo["slots"] = { a: {}, b: {} };
    for (const s of ["a", "b"] as const) slots[s] = this.slotInfo(dir, s);
    for (const e of this.entries(dir))
      slots[e.slot] = {
        ...slots[e.slot],
        entry: e.file,
        ...(e.tries_left === undefined ? {} : { tries_left: e.tries_left }),
      };
    this.slots = slots;
  }

  info(): UpgradeInfo {
    const slots = this.slots;
    return {
      loader: this.loader,
      slot: this.slot,
      generation: this.generation,
      trial: this.trial,
      confirmed: this.confirmed,
      slots,
      last_attempt: this.history().at(-1) ?? null,
      in_progress: this.busy,
    };
  }

  // --- install -----------------------------------------------------------------------------

  private begin(source: "url" | "rpc", size?: number): Install {
    if (this.busy) throw new KernelError(ErrorCode.InvalidParams, "an upgrade is already in progress");
    if (!this.confirmed)
      throw new KernelError(ErrorCode.InvalidParams, "this boot is a trial not yet confirmed: upgrade once it is");
    const target = this.other;
    const dev = this.o.devices[target];
    if (!dev) throw new KernelError(ErrorCode.InternalError, `no AAOS-SYS-${target.toUpperCase()} partition`);
    if (!this.o.devices.boot && !this.o.espDir)
      throw new KernelError(ErrorCode.InternalError, "no AAOS-BOOT partition");
    let key = null;
    const keyPath = join(this.o.configDir, UPGRADE_PUBLIC_KEY);
    if (existsSync(keyPath)) {
      try {
        key = publicKeyFrom(readFileSync(keyPath, "utf8"));
      } catch (err) {
        throw new KernelError(ErrorCode.InternalError, `${UPGRADE_PUBLIC_KEY}: ${(err as Error).message}`);
      }
    }
    this.busy = { source, received: 0, ...(size === undefined ? {} : { size }) };
    return new Install(
      target,
      dev,
      key,
      (n) => {
        if (this.busy) this.busy.received = n;
      },
      // once the header checked out, before the first byte goes to the slot: nothing may boot it any more
      () =>
        this.withEsp((dir) => {
          for (const e of this.entries(dir))
            if (e.slot === target) rmSync(join(dir, "loader", "entries", e.file), { force: true });
        }),
    );
  }

  /** The bundle's bytes are in; check them all, then write the kernel and the entry that tries the slot once. */
  private async commit(inst: Install, source: "url" | "rpc", sha256: string): Promise<InstallResult> {
    const t0 = performance.now();
    const { manifest, signed } = inst.finish(sha256);
    const tVerify = performance.now();
    let generation = 0;
    this.withEsp((dir) => {
      const gens = this.entries(dir).map((e) => e.generation);
      generation = Math.max(this.generation ?? 1, ...gens) + 1;
      const sd = join(dir, "aaos", inst.target);
      mkdirSync(sd, { recursive: true });
      writeDurable(join(sd, "bzImage"), inst.kernel!);
      const info: SlotInfo = {
        version: manifest.version,
        generation,
        sys_sha256: manifest.files[1]!.sha256,
        kernel_sha256: manifest.files[0]!.sha256,
        installed_at: new Date().toISOString(),
      };
      writeDurable(join(sd, "slot.json"), JSON.stringify(info) + "\n");
      const ed = join(dir, "loader", "entries");
      mkdirSync(ed, { recursive: true });
      writeDurable(
        join(ed, `aaos-${generation}-${inst.target}+1.conf`),
        bootEntry(inst.target, generation, manifest.version),
      );
    });
    const tEsp = performance.now();
    const result: InstallResult = {
      version: manifest.version,
      slot: inst.target,
      generation,
      signed,
      sha256,
      size: inst.received,
      timings_ms: {
        transfer: Math.round(inst.transferMs),
        verify: Math.round(tVerify - t0),
        boot_partition: Math.round(tEsp - tVerify),
      },
    };
    this.safeRecord({
      at: new Date().toISOString(),
      boot_id: this.o.bootId,
      outcome: "installed",
      slot: inst.target,
      generation,
      version: manifest.version,
      from: { slot: this.slot, version: this.o.version, generation: this.generation },
      source,
      sha256,
    });
    await this.audit({
      kind: "upgrade.install",
      source,
      from: { slot: this.slot, version: this.o.version },
      ...result,
    });
    return result;
  }

  private async refuse(source: "url" | "rpc", err: unknown, extra: Record<string, unknown>): Promise<never> {
    const reason = (err as Error)?.message ?? String(err);
    await this.audit({ kind: "upgrade.refused", source, reason, ...extra });
    if (err instanceof KernelError) throw err;
    throw new KernelError(err instanceof BundleError ? ErrorCode.InvalidParams : ErrorCode.InternalError, reason);
  }

  /** system.upgrade {url, sha256}: download (HTTP/HTTPS) straight into the inactive slot, verify, install. */
  async fromUrl(url: string, sha256: string): Promise<InstallResult> {
    // an upload over the RPC line that its sender abandoned gives way
    if (this.chunked) {
      this.chunked.install.abort();
      this.chunked = null;
      this.busy = null;
    }
    const inst = this.begin("url");
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3_600_000) });
      if (!res.ok || !res.body) throw new KernelError(ErrorCode.InvalidParams, `GET ${url}: HTTP ${res.status}`);
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) inst.push(chunk);
      return await this.commit(inst, "url", sha256.toLowerCase());
    } catch (err) {
      inst.abort();
      return await this.refuse("url", err, { url, sha256 });
    } finally {
      this.busy = null;
    }
  }

  /**
   * system.upgrade {sha256, size, offset, data}: the bundle in order over the RPC line,
   * base64 chunks; offset 0 starts (over) an upload. The last chunk installs.
   */
  async chunk(p: {
    sha256: string;
    size: number;
    offset: number;
    data: string;
  }): Promise<{ received: number; size: number } | InstallResult> {
    const sha256 = p.sha256.toLowerCase();
    if (p.offset === 0) {
      if (this.chunked) {
        this.chunked.install.abort();
        this.chunked = null;
        this.busy = null;
      }
      this.chunked = { sha256, size: p.size, install: this.begin("rpc", p.size) };
    }
    const c = this.chunked;
    if (!c || c.sha256 !== sha256 || c.size !== p.size)
      throw new KernelError(ErrorCode.InvalidParams, "no upload of this bundle in progress: start at offset 0");
    if (p.offset !== c.install.received)
      throw new KernelError(ErrorCode.InvalidParams, `expected offset ${c.install.received}`, {
        expected_offset: c.install.received,
      });
    const bytes = Buffer.from(p.data, "base64");
    try {
      if (c.install.received + bytes.length > c.size) throw new BundleError("bundle: more bytes than size");
      c.install.push(bytes);
      if (c.install.received < c.size) return { received: c.install.received, size: c.size };
      this.chunked = null;
      return await this.commit(c.install, "rpc", sha256);
    } catch (err) {
      c.install.abort();
      this.chunked = null;
      this.busy = null;
      return await this.refuse("rpc", err, { sha256, size: p.size });
    } finally {
      if (!this.chunked) this.busy = null;
    }
  }

  /** system.rollback: boot the other slot again (as the next generation, one try). */
  async rollback(): Promise<{ slot: Slot; generation: number; version: string | null }> {
    if (this.busy) throw new KernelError(ErrorCode.InvalidParams, "an upgrade is in progress");
    const target = this.other;
    let out: { slot: Slot; generation: number; version: string | null } | null = null;
    this.withEsp((dir) => {
      const all = this.entries(dir);
      const e = all.find((x) => x.slot === target);
      const info = this.slotInfo(dir, target);
      // only a confirmed entry (no counter): a system that came up before
      if (!e || e.tries_left !== undefined || !existsSync(join(dir, "aaos", target, "bzImage")))
        throw new KernelError(
          ErrorCode.InvalidParams,
          `slot ${target} holds no system that booted: nothing to roll back to`,
        );
      const generation = Math.max(this.generation ?? 1, ...all.map((x) => x.generation)) + 1;
      const ed = join(dir, "loader", "entries");
      writeDurable(join(ed, `aaos-${generation}-${target}+1.conf`), bootEntry(target, generation, info.version ?? "?"));
      rmSync(join(ed, e.file), { force: true });
      out = { slot: target, generation, version: info.version ?? null };
    });
    const r = out!;
    this.safeRecord({
      at: new Date().toISOString(),
      boot_id: this.o.bootId,
      outcome: "rollback",
      slot: r.slot,
      generation: r.generation,
      ...(r.version ? { version: r.version } : {}),
      from: { slot: this.slot, version: this.o.version, generation: this.generation },
    });
    await this.audit({ kind: "upgrade.rollback", ...r, from: { slot: this.slot, version: this.o.version } });
    return r;
  }
}

function writeDurable(path: string, data: string | Uint8Array): void {
  const tmp = path + ".new";
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** One bundle going into a slot: the erofs straight onto the partition, the kernel in memory until commit. */
class Install {
  kernel: Buffer | null = null;
  private fd = -1;
  private reader: BundleReader;
  private manifest: BundleManifest | null = null;
  private t0 = performance.now();
  private isSigned = false;
  transferMs = 0;

  constructor(
    readonly target: Slot,
    private dev: string,
    key: import("node:crypto").KeyObject | null,
    private progress: (n: number) => void,
    beforeWrite: () => void,
  ) {
    const capacity = blockSize(dev);
    this.reader = new BundleReader(
      {
        onManifest: (m, signed) => {
          this.isSigned = signed;
          const sys = m.files[1]!.size;
          if (capacity !== null && sys > capacity)
            throw new BundleError(`bundle: the system (${sys} bytes) does not fit slot ${target} (${capacity} bytes)`);
          if (m.files[0]!.size > 64 * 1024 * 1024) throw new BundleError("bundle: kernel larger than 64 MiB");
          this.manifest = m;
          this.kernel = Buffer.alloc(m.files[0]!.size);
          beforeWrite();
          this.fd = openSync(dev, fsc.O_WRONLY);
        },
        write: (name, off, data) => {
          if (name === "bzImage") this.kernel!.set(data, off);
          else
            for (let done = 0; done < data.length;)
              done += writeSync(this.fd, data, done, data.length - done, off + done);
        },
      },
      key,
    );
  }

  get received(): number {
    return this.reader.received;
  }

  push(b: Uint8Array): void {
    this.reader.push(b);
    this.progress(this.reader.received);
  }

  finish(expectedSha: string): { manifest: BundleManifest; signed: boolean } {
    this.transferMs = performance.now() - this.t0;
    const { sha256 } = this.reader.finish();
    if (sha256 !== expectedSha) throw new BundleError(`bundle: sha256 is ${sha256}, expected ${expectedSha}`);
    const m = this.manifest!;
    fsyncSync(this.fd);
    // BLKFLSBUF: drop the device's cached pages, so the read below comes from the disk, not from memory
    // (a plain file, in tests, answers ENOTTY: nothing cached to drop that matters)
    libc().ioctl(this.fd, BLKFLSBUF, null);
    closeSync(this.fd);
    this.fd = -1;
    // read the slot back: what is on the partition is what the manifest says
    const want = m.files[1]!;
    const h = createHash("sha256");
    const fd = openSync(this.dev, "r");
    try {
      const buf = Buffer.alloc(4 * 1024 * 1024);
      for (let off = 0; off < want.size;) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, want.size - off), off);
        if (n <= 0) break;
        h.update(buf.subarray(0, n));
        off += n;
      }
    } finally {
      closeSync(fd);
    }
    const got = h.digest("hex");
    if (got !== want.sha256)
      throw new BundleError(`slot ${this.target} reads back as sha256 ${got}, not ${want.sha256}`);
    return { manifest: m, signed: this.isSigned };
  }

  abort(): void {
    if (this.fd >= 0) {
      try {
        closeSync(this.fd);
      } catch {}
      this.fd = -1;
    }
  }
}
