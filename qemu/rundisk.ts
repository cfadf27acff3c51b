// The disk `make run` boots: a run-only copy of the built image, never the
// image itself. out/aaos.img stays as built (what you flash or convert); the
// copy, out/run/aaos.img, keeps the data partition between runs until the
// image is rebuilt, and gets a fresh AAOS-CFG at every start: the built
// image's, plus the model provider settings of the host's environment.
//
//   ANTHROPIC_API_KEY     → secrets/anthropic_api_key (or the file kernel.yaml names)
//   ANTHROPIC_BASE_URL    → inference.providers.anthropic.base_url
//   OPENAI_BASE_URL       → inference.providers.openai_compatible endpoint "host"
//   OPENAI_API_KEY        → its key (secrets/openai_api_key)
//   OPENAI_MODEL          → its models: manifests naming this model go there (a,b for several)
//
// A URL on the host's loopback (localhost, 127.x, [::1]) is given to the
// guest as 10.0.2.2, where QEMU's user network reaches the host's loopback.
// Written with mtools on the copy (no loop devices, no root).
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { parseDocument } from "yaml";
import { gptPartitions } from "./disk.ts";

export const CONFIG_LABEL = "AAOS-CFG";
/** the host as QEMU's user network shows it to the guest */
export const GUEST_HOST = "10.0.2.2";
const ANTHROPIC_KEY_FILE = "secrets/anthropic_api_key";
const OPENAI_KEY_FILE = "secrets/openai_api_key";
export const OPENAI_ENDPOINT = "host";

export interface RunDisk {
  /** the copy to boot */
  image: string;
  /** true when it was (re)made from the image this time (its data partition is empty) */
  fresh: boolean;
  /** what was passed to the guest, one line each (no key) */
  notes: string[];
}

/** a URL on the host's loopback → the same URL as the guest reaches it */
export function guestUrl(url: string): string {
  return url.replace(/^(https?:\/\/)(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(?=[:/]|$)/i, `$1${GUEST_HOST}`);
}

function mtools(tool: string, args: string[], input?: string): { ok: boolean; out: string; err: string } {
  const r = Bun.spawnSync([tool, ...args], {
    env: { ...process.env, MTOOLS_SKIP_CHECK: "1" },
    stdin: input === undefined ? "ignore" : Buffer.from(input),
  });
  return { ok: r.exitCode === 0, out: r.stdout.toString(), err: r.stderr.toString() };
}

function must(tool: string, args: string[]): string {
  const r = mtools(tool, args);
  if (!r.ok) throw new Error(`${tool} ${args.join(" ")}: ${r.err.trim()}`);
  return r.out;
}

/** a file on a FAT partition of an image, or null */
export function readFatFile(image: string, offset: number, path: string): string | null {
  const r = mtools("mtype", ["-i", `${image}@@${offset}`, `::/${path}`]);
  return r.ok ? r.out : null;
}

function configOffset(image: string): { offset: number; first: number; count: number } {
  const p = gptPartitions(image).find((x) => x.name === CONFIG_LABEL);
  if (!p) throw new Error(`${image}: no ${CONFIG_LABEL} partition`);
  return { offset: p.firstLba * 512, first: p.firstLba, count: p.lastLba - p.firstLba + 1 };
}

/** the host's provider settings, as they should appear to the guest (nothing read but env) */
export function providerSettings(env: Record<string, string | undefined>) {
  const v = (k: string) => env[k]?.trim() || undefined;
  return {
    anthropicKey: v("ANTHROPIC_API_KEY"),
    anthropicBaseUrl: v("ANTHROPIC_BASE_URL"),
    openaiBaseUrl: v("OPENAI_BASE_URL"),
    openaiKey: v("OPENAI_API_KEY"),
    openaiModels: (v("OPENAI_MODEL") ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean),
  };
}

/** a relative path inside the config partition, or null (absolute, "..", empty) */
function insideConfig(p: unknown): string | null {
  if (typeof p !== "string" || !p || p.startsWith("/") || p.split("/").includes("..")) return null;
  return p.replace(/^\.\//, "");
}

export function prepareRunDisk(o: {
  source: string;
  runDir: string;
  env: Record<string, string | undefined>;
}): RunDisk {
  const { source, runDir } = o;
  if (!existsSync(source)) throw new Error(`${source} missing: make image`);
  const run = join(runDir, basename(source));
  const stampFile = `${run}.source`;
  const st = statSync(source);
  const stamp = JSON.stringify({ source, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino });
  const cfg = configOffset(source);
  let fresh = false;
  const same =
    existsSync(run) &&
    existsSync(stampFile) &&
    readFileSync(stampFile, "utf8") === stamp &&
    JSON.stringify(configOffset(run)) === JSON.stringify(cfg);
  if (!same) {
    // the image as built; `cp --sparse` keeps the copy as small on disk as the image
    rmSync(stampFile, { force: true });
    const tmp = `${run}.tmp`;
    const r = Bun.spawnSync(["cp", "--sparse=always", source, tmp]);
    if (r.exitCode !== 0) {
      rmSync(tmp, { force: true });
      copyFileSync(source, tmp);
    }
    chmodSync(tmp, 0o600);
    Bun.spawnSync(["mv", "-f", tmp, run]);
    writeFileSync(stampFile, stamp);
    fresh = true;
  }
  chmodSync(run, 0o600); // it may hold a key

  // AAOS-CFG as built, over whatever an earlier run left there
  const dd = Bun.spawnSync([
    "dd",
    `if=${source}`,
    `of=${run}`,
    "bs=512",
    `skip=${cfg.first}`,
    `seek=${cfg.first}`,
    `count=${cfg.count}`,
    "conv=notrunc",
    "status=none",
  ]);
  if (dd.exitCode !== 0) throw new Error(`dd: ${dd.stderr.toString()}`);

  const s = providerSettings(o.env);
  const notes: string[] = [];
  if (!s.anthropicKey && !s.anthropicBaseUrl && !s.openaiBaseUrl) return { image: run, fresh, notes };

  const img = `${run}@@${cfg.offset}`;
  const yamlText = readFatFile(run, cfg.offset, "kernel.yaml") ?? "";
  const doc = parseDocument(yamlText);
  if (doc.errors.length)
    throw new Error(
      `${source}: kernel.yaml on ${CONFIG_LABEL} does not parse (${doc.errors[0]!.message}); fix it before passing provider settings`,
    );
  if (doc.contents === null) doc.contents = doc.createNode({}) as never;
  // `inference:` or `providers:` written with nothing under them: maps, so paths can be set beneath
  for (const path of [["inference"], ["inference", "providers"], ["inference", "providers", "anthropic"]])
    if (doc.hasIn(path) && doc.getIn(path) == null) doc.setIn(path, doc.createNode({}));
  const files: [string, string][] = [];

  if (s.anthropicKey) {
    const named = insideConfig(doc.getIn(["inference", "providers", "anthropic", "api_key_file"]));
    const file = named ?? ANTHROPIC_KEY_FILE;
    if (!named) doc.setIn(["inference", "providers", "anthropic", "api_key_file"], file);
    files.push([file, s.anthropicKey]);
    notes.push(
      `model provider: Anthropic, key from the host's ANTHROPIC_API_KEY (${file} on the run copy's ${CONFIG_LABEL})`,
    );
  }
  if (s.anthropicBaseUrl) {
    const url = guestUrl(s.anthropicBaseUrl);
    doc.setIn(["inference", "providers", "anthropic", "base_url"], url);
    notes.push(
      `Anthropic base URL ${url}${url === s.anthropicBaseUrl ? "" : ` (the host's ${s.anthropicBaseUrl})`}, from ANTHROPIC_BASE_URL`,
    );
  }
  if (s.openaiBaseUrl) {
    const url = guestUrl(s.openaiBaseUrl);
    const ep: Record<string, unknown> = { name: OPENAI_ENDPOINT, base_url: url, models: s.openaiModels };
    if (s.openaiKey) {
      ep.api_key_file = OPENAI_KEY_FILE;
      files.push([OPENAI_KEY_FILE, s.openaiKey]);
    }
    const js = doc.toJS() as { inference?: { providers?: { openai_compatible?: unknown } } } | null;
    const list = js?.inference?.providers?.openai_compatible;
    const kept = (Array.isArray(list) ? list : []).filter((e) => (e as { name?: unknown })?.name !== OPENAI_ENDPOINT);
    doc.setIn(["inference", "providers", "openai_compatible"], doc.createNode([...kept, ep]));
    notes.push(
      `model provider: OpenAI-compatible "${OPENAI_ENDPOINT}" at ${url}${url === s.openaiBaseUrl ? "" : ` (the host's ${s.openaiBaseUrl})`}` +
        `${s.openaiKey ? ", key from OPENAI_API_KEY" : ""}; manifests use model openai:${OPENAI_ENDPOINT}/MODEL` +
        `${s.openaiModels.length ? ` or ${s.openaiModels.join(", ")}` : ""}`,
    );
  }

  const work = mkdtempSync(join(runDir, "cfg-"));
  try {
    const put = (rel: string, text: string) => {
      const dirs = rel.split("/").slice(0, -1);
      for (let i = 1; i <= dirs.length; i++) mtools("mmd", ["-i", img, `::/${dirs.slice(0, i).join("/")}`]);
      const tmp = join(work, "f");
      writeFileSync(tmp, text, { mode: 0o600 });
      must("mcopy", ["-o", "-i", img, tmp, `::/${rel}`]);
      rmSync(tmp, { force: true });
    };
    put("kernel.yaml", doc.toString());
    for (const [rel, value] of files) put(rel, value + "\n");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { image: run, fresh, notes };
}
