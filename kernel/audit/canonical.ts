// Canonical JSON, record hashing, and the sanitiser that turns whatever a
// caller hands to audit() into a plain, redacted JSON tree.
//
// Canonical JSON (what the hash covers): objects with their keys sorted by
// UTF-16 code units (Array.prototype.sort's default, as RFC 8785 does), no
// whitespace, strings and numbers as JSON.stringify writes them (shortest
// round-trip numbers). Built by hand rather than with JSON.stringify on a
// sorted object because JS engines put integer-like keys ("2", "10") first in
// numeric order whatever the insertion order.
import { createHash } from "node:crypto";
import { cut } from "../cut.ts";

/** what stands for a secret everywhere: audit records, log lines, error text (one spelling) */
export const REDACTED = "[redacted]";
export const GENESIS = "0".repeat(64);
export const HASH_RE = /^[0-9a-f]{64}$/;

/** Depth past which a nested value is replaced by a marker string. */
const MAX_DEPTH = 64;

/** Anthropic-style keys are redacted even if nobody registered them. */
const KEY_PATTERN = /sk-ant-[A-Za-z0-9_-]{16,}/;

export function canonicalJSON(v: unknown): string {
  if (v === null || typeof v !== "object") {
    const s = JSON.stringify(v);
    return s === undefined ? "null" : s;
  }
  // what sanitize() builds (keys inserted sorted, plain values) is written by one JSON.stringify
  if (stringifiesCanonically(v, 0)) return JSON.stringify(v);
  if (Array.isArray(v)) {
    let out = "[";
    for (let i = 0; i < v.length; i++) {
      if (i) out += ",";
      out += canonicalJSON(v[i]);
    }
    return out + "]";
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let out = "{";
  let first = true;
  for (const k of keys) {
    const val = o[k];
    if (val === undefined) continue;
    if (!first) out += ",";
    first = false;
    out += JSON.stringify(k) + ":" + canonicalJSON(val);
  }
  return out + "}";
}

/**
 * Whether JSON.stringify(v) is canonicalJSON(v): every object's keys already
 * come out in ascending UTF-16 order (JSON.stringify writes them in
 * Object.keys order, which puts integer-like keys first: an object where
 * that differs from the sorted order fails the check), and every value is
 * one both write the same way (strings, finite numbers, booleans, null,
 * arrays and objects of those; no toJSON, no undefined, functions, symbols
 * or bigints). Checks an object's own keys before its values, so an
 * unsorted object fails before its subtree is walked.
 */
function stringifiesCanonically(v: object, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!writesCanonically(v[i], depth)) return false;
    return true;
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return false;
  const keys = Object.keys(v);
  for (let i = 1; i < keys.length; i++) if (!(keys[i - 1]! < keys[i]!)) return false;
  const o = v as Record<string, unknown>;
  for (let i = 0; i < keys.length; i++) if (!writesCanonically(o[keys[i]!], depth)) return false;
  return true;
}

/** a value inside a tree stringifiesCanonically() checks, at the tree's depth */
function writesCanonically(x: unknown, depth: number): boolean {
  if (x === null) return true;
  switch (typeof x) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(x);
    case "object":
      return stringifiesCanonically(x, depth + 1);
    default:
      return false;
  }
}

/**
 * keys.sort(), in place: the default order (UTF-16 code units). Records
 * hold a handful of keys, where an insertion sort beats the engine's sort.
 */
export function sortKeys(keys: string[]): string[] {
  if (keys.length > 24) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

const BunHasher = (globalThis as { Bun?: { CryptoHasher?: { hash(alg: string, data: string, enc: "hex"): string } } })
  .Bun?.CryptoHasher;

/** sha256 of the UTF-8 bytes of `s`, lower-case hex (Bun's one-shot hasher is ~6x node:crypto's). */
export function sha256hex(s: string): string {
  return BunHasher ? BunHasher.hash("sha256", s, "hex") : createHash("sha256").update(s, "utf8").digest("hex");
}

/**
 * Check a line as written by the log: canonical JSON with `,"hash":"<hex>"}`
 * as its last member. When the bytes before that member hash to it, the
 * record is intact without re-canonicalising; otherwise the caller falls
 * back to recordHash() (a line someone re-formatted but did not change).
 */
export function lineHashMatches(line: string, hash: string): boolean {
  const suffix = 9 + 64 + 2; // ,"hash":"  <64 hex>  "}
  if (line.length <= suffix || !line.endsWith('"}') || line.slice(-suffix, -suffix + 9) !== ',"hash":"') return false;
  if (line.slice(-66, -2) !== hash) return false;
  return sha256hex(line.slice(0, -suffix) + "}") === hash;
}

const BunSHA256 = (globalThis as { Bun?: { SHA256?: { hash(data: Uint8Array, enc: "hex"): string } } }).Bun?.SHA256;

/**
 * lineHashMatches() for a line held twice, as the decoded text.slice(c, cn)
 * and as its bytes buf[start, end) (no '\n'), as verify() reads it: the
 * shape (`,"hash":"<hash>"}` last) is checked on the text, without slicing,
 * and the hash is taken over the bytes, without encoding or concatenation.
 * Same answer as lineHashMatches(text.slice(c, cn), hash): the last 75
 * characters being ASCII means they are the last 75 bytes (UTF-8 never
 * decodes to ASCII from anything but that byte), and a match means the bytes
 * are what the log hashed. For the one-shot hash the member's ',' is
 * overwritten with '}' and put back before returning (synchronously).
 */
export function lineHashMatchesIn(
  text: string,
  c: number,
  cn: number,
  buf: Uint8Array,
  start: number,
  end: number,
  hash: string,
): boolean {
  if (cn - c <= 75 || hash.length !== 64) return false;
  if (text.charCodeAt(cn - 1) !== 0x7d || text.charCodeAt(cn - 2) !== 0x22) return false;
  if (!text.startsWith(',"hash":"', cn - 75) || !text.startsWith(hash, cn - 66)) return false;
  const cut = end - 75;
  buf[cut] = 0x7d;
  const content = buf.subarray(start, cut + 1);
  const d = sha256Bytes(content);
  buf[cut] = 0x2c;
  return d === hash;
}

/** sha256 of bytes, lower-case hex */
export function sha256Bytes(content: Uint8Array): string {
  return BunSHA256 ? BunSHA256.hash(content, "hex") : createHash("sha256").update(content).digest("hex");
}

/** The hash of a record: sha256 over the canonical JSON of every field but `hash`. */
export function recordHash(rec: Record<string, unknown>): string {
  if (!("hash" in rec)) return sha256hex(canonicalJSON(rec));
  const { hash: _drop, ...rest } = rec;
  return sha256hex(canonicalJSON(rest));
}

// Key names whose values are credentials, compared after lower-casing and
// removing '-', '_', '.', and spaces: "X-Api-Key" → "xapikey".
const SENSITIVE_PARTS = [
  "apikey",
  "password",
  "passwd",
  "passphrase",
  "secret",
  "authorization",
  "privatekey",
  "cookie",
  "credential",
];
const SENSITIVE_SUFFIXES = [
  "accesstoken",
  "refreshtoken",
  "authtoken",
  "bearertoken",
  "sessiontoken",
  "idtoken",
  "apitoken",
];

/** the answers for keys seen so far: records reuse a small set of field names */
const sensitiveKeys = new Map<string, boolean>();
const SENSITIVE_CACHE_MAX = 4096;

export function isSensitiveKey(key: string): boolean {
  const known = sensitiveKeys.get(key);
  if (known !== undefined) return known;
  const answer = sensitiveKeyCheck(key);
  if (sensitiveKeys.size >= SENSITIVE_CACHE_MAX) sensitiveKeys.clear();
  sensitiveKeys.set(key, answer);
  return answer;
}

function sensitiveKeyCheck(key: string): boolean {
  const k = key.toLowerCase().replace(/[-_.\s]/g, "");
  for (const p of SENSITIVE_PARTS) if (k.includes(p)) return true;
  for (const s of SENSITIVE_SUFFIXES) if (k.endsWith(s)) return true;
  return false;
}

export interface SanitizeContext {
  secrets: ReadonlySet<string>;
  /** strings longer than this many UTF-8 bytes are cut (after redaction; kernel/cut.ts) */
  maxString: number;
}

function redactString(s: string, ctx: SanitizeContext): string {
  for (const secret of ctx.secrets) if (s.includes(secret)) return REDACTED;
  if (s.length >= 23 && KEY_PATTERN.test(s)) return REDACTED;
  return cut(s, ctx.maxString);
}

function redactKey(k: string, ctx: SanitizeContext): string {
  for (const secret of ctx.secrets) if (k.includes(secret)) k = k.split(secret).join(REDACTED);
  return k;
}

function describeThrow(e: unknown): string {
  try {
    return e instanceof Error ? e.message : String(e);
  } catch {
    return "?";
  }
}

/**
 * A plain JSON tree (null-prototype objects, arrays, strings, finite
 * numbers, booleans, null) or undefined when the value is to be dropped.
 * Never throws: what cannot be read becomes a marker string.
 */
export function sanitize(v: unknown, ctx: SanitizeContext, depth = 0, ancestors: Set<object> = new Set()): unknown {
  switch (typeof v) {
    case "string":
      return redactString(v, ctx);
    case "number":
      return Number.isFinite(v) ? v : null;
    case "boolean":
      return v;
    case "bigint":
      return v.toString();
    case "undefined":
    case "function":
    case "symbol":
      return undefined;
  }
  if (v === null) return null;
  const obj = v as object;
  if (depth >= MAX_DEPTH) return "[too deep]";
  if (ancestors.has(obj)) return "[circular]";
  ancestors.add(obj);
  try {
    if (obj instanceof Error) {
      const out: Record<string, unknown> = Object.create(null);
      out.message = redactString(String(obj.message), ctx);
      if (obj.name && obj.name !== "Error") out.name = redactString(String(obj.name), ctx);
      const code = (obj as { code?: unknown }).code;
      if (typeof code === "number" || typeof code === "string") out.code = sanitize(code, ctx, depth + 1, ancestors);
      return out;
    }
    if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? null : obj.toISOString();
    if (ArrayBuffer.isView(obj)) {
      const b = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength);
      return { type: "bytes", length: b.length, base64: redactString(b.toString("base64"), ctx) };
    }
    if (obj instanceof ArrayBuffer)
      return { type: "bytes", length: obj.byteLength, base64: redactString(Buffer.from(obj).toString("base64"), ctx) };
    if (obj instanceof Map) {
      const out: Record<string, unknown> = Object.create(null);
      for (const [k, val] of obj) putField(out, String(k), val, ctx, depth, ancestors);
      return out;
    }
    if (obj instanceof Set) return [...obj].map((x) => sanitize(x, ctx, depth + 1, ancestors) ?? null);
    if (Array.isArray(obj)) {
      const out = new Array(obj.length);
      for (let i = 0; i < obj.length; i++) {
        let x: unknown;
        try {
          x = sanitize(obj[i], ctx, depth + 1, ancestors);
        } catch (e) {
          x = `[unserialisable: ${describeThrow(e)}]`;
        }
        out[i] = x === undefined ? null : x;
      }
      return out;
    }
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      let j: unknown;
      try {
        j = toJSON.call(obj);
      } catch (e) {
        return `[unserialisable: ${describeThrow(e)}]`;
      }
      return sanitize(j, ctx, depth + 1, ancestors);
    }
    const out: Record<string, unknown> = Object.create(null);
    // inserted in canonical order: canonicalJSON() then writes the tree with one JSON.stringify
    for (const k of sortKeys(Object.keys(obj))) {
      let val: unknown;
      try {
        val = (obj as Record<string, unknown>)[k];
      } catch (e) {
        val = `[unserialisable: ${describeThrow(e)}]`;
      }
      putField(out, k, val, ctx, depth, ancestors);
    }
    return out;
  } finally {
    ancestors.delete(obj);
  }
}

function putField(
  out: Record<string, unknown>,
  k: string,
  val: unknown,
  ctx: SanitizeContext,
  depth: number,
  ancestors: Set<object>,
) {
  const key = redactKey(k, ctx);
  if (isSensitiveKey(k)) {
    if (val !== undefined && val !== null && typeof val !== "function" && typeof val !== "symbol") out[key] = REDACTED;
    else if (val === null) out[key] = null;
    return;
  }
  let x: unknown;
  try {
    x = sanitize(val, ctx, depth + 1, ancestors);
  } catch (e) {
    x = `[unserialisable: ${describeThrow(e)}]`;
  }
  if (x !== undefined) out[key] = x;
}
