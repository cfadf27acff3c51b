// The upgrade bundle (out/aaos-upgrade.bundle, `make upgrade-bundle`): one
// file holding a new system slot and its kernel, read as a stream so the
// appliance never stages it (a download or RPC chunks go straight into the
// inactive slot; nothing points at that slot until everything checked out).
//
//   "AAOSUPG1"              8 bytes, magic
//   u32 LE M, manifest      M bytes of JSON (BundleManifest)
//   u32 LE S, signature     S bytes: 0, or 64 (ed25519 over the manifest's bytes)
//   payload                 the manifest's files, back to back, in its order
//
// The manifest carries each file's size and sha256, so a verified signature
// over it covers the whole bundle. image/mkbundle.ts writes it.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";

export const BUNDLE_MAGIC = "AAOSUPG1";
export const BUNDLE_FORMAT = 1;
/** the files a bundle holds, in this order: the kernel (for the boot partition), then the slot's erofs */
export const BUNDLE_FILES = ["bzImage", "sys.erofs"] as const;
export type BundleFileName = (typeof BUNDLE_FILES)[number];
const MAX_MANIFEST = 64 * 1024;

export interface BundleManifest {
  format: number;
  /** the system's version (VERSION of the kernel inside) */
  version: string;
  created_at: string;
  files: { name: BundleFileName; size: number; sha256: string }[];
}

export function encodeHeader(manifest: BundleManifest, privateKeyPem?: string): Uint8Array {
  const m = Buffer.from(JSON.stringify(manifest));
  const sig = privateKeyPem ? sign(null, m, createPrivateKey(privateKeyPem)) : Buffer.alloc(0);
  const out = Buffer.alloc(8 + 4 + m.length + 4 + sig.length);
  out.write(BUNDLE_MAGIC, 0, "latin1");
  out.writeUInt32LE(m.length, 8);
  m.copy(out, 12);
  out.writeUInt32LE(sig.length, 12 + m.length);
  sig.copy(out, 16 + m.length);
  return out;
}

export class BundleError extends Error {}

export interface BundleSinks {
  /** called once the header is parsed and (when a key is given) its signature checked; may refuse by throwing */
  onManifest(m: BundleManifest, signed: boolean): void;
  /** bytes of a file at its offset within that file */
  write(name: BundleFileName, offset: number, data: Uint8Array): void;
}

/**
 * Feed a bundle in order, any chunking; push() throws BundleError at the
 * first thing wrong (bad magic, bad signature, a file's sha256), before the
 * next byte is written. finish() checks that exactly the bundle arrived and
 * returns the sha256 of all of it.
 */
export class BundleReader {
  private head: Buffer = Buffer.alloc(0);
  private manifest: BundleManifest | null = null;
  private file = 0;
  private fileOffset = 0;
  private fileHash = createHash("sha256");
  private all = createHash("sha256");
  received = 0;

  constructor(
    private sinks: BundleSinks,
    private publicKey: KeyObject | null,
  ) {}

  get parsed(): BundleManifest | null {
    return this.manifest;
  }

  push(chunk: Uint8Array): void {
    this.all.update(chunk);
    this.received += chunk.length;
    let data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!this.manifest) {
      this.head = Buffer.concat([this.head, data]);
      const h = this.tryHeader();
      if (h === null) return;
      data = this.head.subarray(h);
      this.head = Buffer.alloc(0);
    }
    const files = this.manifest!.files;
    while (data.length > 0) {
      const f = files[this.file];
      if (!f) throw new BundleError("bundle: bytes after the last file");
      const n = Math.min(data.length, f.size - this.fileOffset);
      const piece = data.subarray(0, n);
      this.fileHash.update(piece);
      this.sinks.write(f.name, this.fileOffset, piece);
      this.fileOffset += n;
      data = data.subarray(n);
      if (this.fileOffset === f.size) this.endFile();
    }
  }

  private endFile(): void {
    const f = this.manifest!.files[this.file]!;
    const got = this.fileHash.digest("hex");
    if (got !== f.sha256) throw new BundleError(`bundle: ${f.name} has sha256 ${got}, the manifest says ${f.sha256}`);
    this.file++;
    this.fileOffset = 0;
    this.fileHash = createHash("sha256");
  }

  /** the header's length once it is all there (and checked), else null */
  private tryHeader(): number | null {
    const b = this.head;
    if (b.length < 12) return null;
    if (b.subarray(0, 8).toString("latin1") !== BUNDLE_MAGIC)
      throw new BundleError("bundle: not an aaOS upgrade bundle");
    const m = b.readUInt32LE(8);
    if (m > MAX_MANIFEST) throw new BundleError("bundle: manifest too large");
    if (b.length < 16 + m) return null;
    const s = b.readUInt32LE(12 + m);
    if (s !== 0 && s !== 64) throw new BundleError("bundle: bad signature length");
    if (b.length < 16 + m + s) return null;
    const mBytes = b.subarray(12, 12 + m);
    const sig = b.subarray(16 + m, 16 + m + s);
    if (this.publicKey) {
      if (s === 0)
        throw new BundleError("bundle: unsigned, and AAOS-CFG holds upgrade.pub: a signed bundle is required");
      if (!verify(null, mBytes, this.publicKey, sig))
        throw new BundleError("bundle: the signature does not verify against upgrade.pub");
    }
    let manifest: BundleManifest;
    try {
      manifest = JSON.parse(mBytes.toString("utf8"));
    } catch {
      throw new BundleError("bundle: the manifest is not JSON");
    }
    checkManifest(manifest);
    this.manifest = manifest;
    this.sinks.onManifest(manifest, s > 0 && this.publicKey !== null);
    for (; this.manifest.files[this.file]?.size === 0;) this.endFile();
    return 16 + m + s;
  }

  finish(): { sha256: string; manifest: BundleManifest } {
    if (!this.manifest) throw new BundleError("bundle: truncated in its header");
    if (this.file < this.manifest.files.length) throw new BundleError("bundle: truncated");
    return { sha256: this.all.digest("hex"), manifest: this.manifest };
  }
}

function checkManifest(m: BundleManifest): void {
  const ok =
    m &&
    m.format === BUNDLE_FORMAT &&
    typeof m.version === "string" &&
    /^[A-Za-z0-9._+~-]{1,64}$/.test(m.version) &&
    Array.isArray(m.files) &&
    m.files.length === BUNDLE_FILES.length &&
    m.files.every(
      (f, i) =>
        f.name === BUNDLE_FILES[i] &&
        Number.isSafeInteger(f.size) &&
        f.size > 0 &&
        typeof f.sha256 === "string" &&
        /^[0-9a-f]{64}$/.test(f.sha256),
    );
  if (!ok) throw new BundleError(`bundle: manifest of an unknown shape (format ${BUNDLE_FORMAT} expected)`);
}

export function publicKeyFrom(pem: string): KeyObject {
  const k = createPublicKey(pem);
  if (k.asymmetricKeyType !== "ed25519") throw new BundleError("upgrade.pub: not an ed25519 public key");
  return k;
}
