// Manifest loading: YAML → zod, with every error pointing at a line and
// column of the YAML so an operator editing /config/manifests on a FAT
// partition can find the mistake.
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { ErrorCode, KernelError } from "../errors.ts";
import { parseCapability } from "../caps/index.ts";
import {
  MANIFEST_NAME,
  MANIFEST_NAME_RULE,
  ManifestSchema,
  ServesError,
  servedMethods,
  type Manifest,
} from "./schema.ts";
import { describe, PositionedYaml, type PositionedError } from "./yaml.ts";

/** effect classes approval_required may name: every tool of the class needs an approval */
export const EFFECT_CLASSES: ReadonlySet<string> = new Set(["reversible", "irreversible"]);

export interface LoadOptions {
  /** tool names the kernel knows: tool capabilities and approval_required must name only these */
  knownTools?: ReadonlySet<string>;
  /**
   * agent names the kernel knows (the manifests under manifests/, see
   * manifestNames): spawn_child, message_send and the AGENT of every
   * `call: AGENT.METHOD` capability must name only these (or, for
   * message_send and call, the manifest's own name). Absent: not checked.
   */
  knownAgents?: ReadonlySet<string>;
  /** where the text came from, for messages */
  source?: string;
}

export const MAX_MANIFEST_BYTES = 256 * 1024;
/** names listed in an "unknown ..." message at most */
const MAX_LISTED = 30;

export function loadManifest(text: string, opts: LoadOptions = {}): Manifest {
  const source = opts.source ?? "manifest";
  if (text.length > MAX_MANIFEST_BYTES) {
    throw invalid(source, { message: `larger than ${MAX_MANIFEST_BYTES} bytes`, path: "", line: 1, column: 1 });
  }
  const parsed = PositionedYaml.parse(text);
  if ("error" in parsed) throw invalid(source, parsed.error);
  const { yaml, value } = parsed;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid(source, yaml.at([], "expected a mapping of manifest fields"));
  }
  const result = ManifestSchema.safeParse(value);
  if (!result.success) throw invalid(source, yaml.fromZod(result.error));
  const manifest = result.data;
  const tools = opts.knownTools;
  const agents = opts.knownAgents;
  // an agent may message (or call) another instance of itself, whatever it was spawned from
  const peers = agents && new Set([...agents, manifest.name]);

  manifest.capabilities.forEach((entry, i) => {
    const text = typeof entry === "string" ? entry : entry.capability;
    const path = typeof entry === "string" ? ["capabilities", i] : ["capabilities", i, "capability"];
    let problem: string | null = null;
    try {
      const cap = parseCapability(text);
      if (cap.kind === "tool" && tools && !tools.has(cap.tool)) problem = unknown("tool", cap.tool, tools);
      if (cap.kind === "call" && peers && !peers.has(cap.agent))
        problem = unknown("agent", cap.agent, peers, `: there is no manifests/${cap.agent}.yaml`);
    } catch (e) {
      problem = (e as Error).message;
    }
    if (problem !== null) throw invalid(source, yaml.at(path, `invalid capability "${text}": ${problem}`));
  });
  if (tools) {
    manifest.approval_required.forEach((tool, i) => {
      // a tool, or an effect class: every tool of that class (kernel/tools/tool.ts ToolEffect)
      if (!tools.has(tool) && !EFFECT_CLASSES.has(tool))
        throw invalid(
          source,
          yaml.at(
            ["approval_required", i],
            `${unknown("tool", tool, tools)}; or an effect class: ${[...EFFECT_CLASSES].join(", ")}`,
          ),
        );
    });
  }
  for (const field of ["spawn_child", "message_send"] as const) {
    const known = field === "message_send" ? peers : agents;
    manifest[field].forEach((name, i) => {
      if (!MANIFEST_NAME.test(name)) {
        throw invalid(source, yaml.at([field, i], `"${name}" is not an agent name (${MANIFEST_NAME_RULE})`));
      }
      if (known && !known.has(name)) {
        throw invalid(
          source,
          yaml.at([field, i], unknown("agent", name, known, `: there is no manifests/${name}.yaml`)),
        );
      }
    });
  }
  try {
    // converts every serves schema once, and keeps the result for this manifest object
    servedMethods(manifest);
  } catch (e) {
    if (!(e instanceof ServesError)) throw e;
    const [, method, which] = e.path as [string, string, string?];
    throw invalid(source, which === undefined ? yaml.atKey(["serves"], method, e.message) : yaml.at(e.path, e.message));
  }
  return manifest;
}

/**
 * Manifests already loaded, by their text and the tool and agent names they
 * were checked against: agents spawned from one text share one deep-frozen
 * Manifest (and the text's SHA-256) instead of each parsing its own copy.
 * loadManifest is a function of exactly those three, so a hit is the
 * manifest a fresh load would return; only manifests that load are kept (an
 * invalid one is parsed, and refused with its position, every time). At
 * most `max` texts are kept, the oldest dropped first.
 */
export class ManifestCache {
  private readonly entries = new Map<string, { manifest: Manifest; sha256: string }>();

  constructor(private readonly max = 64) {}

  load(
    text: string,
    opts: LoadOptions & { knownTools: ReadonlySet<string>; knownAgents: ReadonlySet<string> },
  ): { manifest: Manifest; sha256: string } {
    const key = `${[...opts.knownTools].join(",")}\n${[...opts.knownAgents].sort().join(",")}\n${text}`;
    const hit = this.entries.get(key);
    if (hit) return hit;
    const entry = {
      manifest: deepFreeze(loadManifest(text, opts)),
      sha256: createHash("sha256").update(text).digest("hex"),
    };
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, entry);
    return entry;
  }
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * The agent names a manifests/ directory defines: its `NAME.yaml` and
 * `NAME.yml` files whose NAME is a manifest name (the others cannot be
 * spawned by name). A missing or unreadable directory defines none.
 */
export function manifestNames(dir: string): Set<string> {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return new Set();
  }
  const names = new Set<string>();
  for (const file of files) {
    const m = /^(.*)\.ya?ml$/.exec(file);
    if (m && MANIFEST_NAME.test(m[1]!)) names.add(m[1]!);
  }
  return names;
}

function unknown(what: "tool" | "agent", name: string, known: ReadonlySet<string>, why = ""): string {
  const all = [...known].sort();
  const listed =
    all.length === 0
      ? "none"
      : all.slice(0, MAX_LISTED).join(", ") + (all.length > MAX_LISTED ? `, … ${all.length - MAX_LISTED} more` : "");
  return `unknown ${what} "${name}"${why} (known: ${listed})`;
}

function invalid(source: string, e: PositionedError): KernelError {
  return new KernelError(ErrorCode.InvalidManifest, `invalid manifest: ${describe(source, e)}`, {
    source,
    path: e.path,
    line: e.line,
    column: e.column,
  });
}
