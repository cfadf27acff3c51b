// The manifest grammar (docs/manifests.md documents every field). Strict:
// an unknown key is an error, never ignored, because a typo in a security
// field (say `aproval_required`) must not silently grant more.
import { z } from "zod";

/** "30s", "10m", "2h", "7d" → milliseconds */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms"];
  return n * unit;
}

const Duration = z.string().refine((s) => parseDuration(s) !== null, {
  message: 'expected a duration like "30s", "10m", "2h" or "7d"',
});

export const CapabilityEntrySchema = z.union([
  z.string().min(1),
  z.strictObject({
    capability: z.string().min(1),
    max_invocations: z.number().int().positive().optional(),
    expires_in: Duration.optional(),
  }),
]);

/** an agent's name: its manifest's file name under manifests/, and what spawn_child and message_send list */
export const MANIFEST_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const MANIFEST_NAME_RULE = "lower-case letters, digits, '-' and '_', at most 63 characters";

/** a method an agent serves (a key of `serves`, the METHOD of `call: AGENT.METHOD`) */
export const METHOD_NAME = /^[a-z][a-z0-9_]{0,62}$/;
export const METHOD_NAME_RULE = "lower-case letters, digits and '_', starting with a letter, at most 63 characters";

/** a JSON Schema, written as a mapping (converted with z.fromJSONSchema at load) */
const JsonSchemaObject = z.record(z.string(), z.unknown());

export const ServedMethodSchema = z.strictObject({
  description: z.string().optional(),
  params: JsonSchemaObject,
  result: JsonSchemaObject,
});

/** the label of a pinned memory block */
export const BLOCK_LABEL = /^[a-z][a-z0-9_-]{0,31}$/;
export const BLOCK_LABEL_RULE =
  "lower-case letters, digits, '-' and '_', starting with a letter, at most 32 characters";
/** at most this many pinned blocks per manifest */
export const MAX_BLOCKS = 16;

/** the length of a block's value as its limit counts it: Unicode code points */
export function blockChars(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

export const MemoryBlockSchema = z.strictObject({
  label: z.string().regex(BLOCK_LABEL, BLOCK_LABEL_RULE),
  /** characters (code points) */
  limit: z.number().int().min(1).max(100_000),
  value: z.string().default(""),
});

/** a manifest's `memory:`: the context window, compaction, and pinned blocks (docs/manifests.md) */
export const ManifestMemorySchema = z
  .strictObject({
    /** tokens; absent: the model's (kernel/memory/compact.ts contextWindowFor) */
    context_window: z.number().int().min(1024).max(10_000_000).optional(),
    /** compact when the context is estimated past this fraction of the window */
    compaction_threshold: z.number().min(0.1).max(0.95).default(0.7),
    /** the model that writes summaries; absent: the agent's own */
    summarization_model: z.string().min(1).optional(),
    blocks: z
      .array(MemoryBlockSchema)
      .max(MAX_BLOCKS, { message: `at most ${MAX_BLOCKS} memory blocks` })
      .default([]),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    m.blocks.forEach((b, i) => {
      if (seen.has(b.label))
        ctx.addIssue({ code: "custom", path: ["blocks", i, "label"], message: `duplicate block label "${b.label}"` });
      seen.add(b.label);
      const chars = blockChars(b.value);
      if (chars > b.limit) {
        ctx.addIssue({
          code: "custom",
          path: ["blocks", i, "value"],
          message: `the value is ${chars} characters, more than the block's limit of ${b.limit}`,
        });
      }
    });
  });

export const ManifestSchema = z
  .strictObject({
    name: z.string().regex(MANIFEST_NAME, MANIFEST_NAME_RULE),
    description: z.string().optional(),
    model: z.string().min(1),
    system_prompt: z.string().default(""),
    capabilities: z.array(CapabilityEntrySchema).default([]),
    approval_required: z.array(z.string().min(1)).default([]),
    spawn_child: z.array(z.string().min(1)).default([]),
    message_send: z.array(z.string().min(1)).default([]),
    budget: z
      .strictObject({
        max_tokens: z.number().int().positive(),
        period: z
          .string()
          .refine((s) => s === "lifetime" || parseDuration(s) !== null, {
            message: 'expected "lifetime" or a duration like "1h"',
          })
          .default("lifetime"),
      })
      .optional(),
    priority: z.number().int().min(0).max(100).default(50),
    weight: z.number().positive().max(1000).default(1),
    max_turns: z.number().int().min(1).max(1000).default(20),
    lifecycle: z.enum(["persistent", "session", "ephemeral"]).default("session"),
    autostart: z.boolean().default(false),
    restart: z.enum(["never", "on-failure", "always"]).default("never"),
    serves: z.record(z.string(), ServedMethodSchema).default({}),
    memory: ManifestMemorySchema.optional(),
  })
  .superRefine((m, ctx) => {
    if (m.autostart && m.lifecycle !== "persistent")
      ctx.addIssue({ code: "custom", path: ["autostart"], message: "autostart needs lifecycle: persistent" });
  });

export type Manifest = z.infer<typeof ManifestSchema>;
export type CapabilityEntry = z.infer<typeof CapabilityEntrySchema>;
export type ServedMethodEntry = z.infer<typeof ServedMethodSchema>;
export type ManifestMemory = z.infer<typeof ManifestMemorySchema>;
export type MemoryBlock = z.infer<typeof MemoryBlockSchema>;

/** a method of `serves`, its schemas converted to zod */
export interface ServedMethod {
  description: string;
  /** validates a call's params (always a JSON object) */
  params: z.ZodType;
  /** validates the answer */
  result: z.ZodType;
  /** the JSON Schemas as written in the manifest */
  paramsSchema: object;
  resultSchema: object;
}

/** a `serves` entry that cannot be used: path is ["serves", METHOD, "params" | "result"] or ["serves", METHOD] */
export class ServesError extends Error {
  constructor(
    message: string,
    readonly path: (string | number)[],
  ) {
    super(message);
    this.name = "ServesError";
  }
}

/**
 * The methods of a manifest's `serves`, each schema converted with
 * z.fromJSONSchema. Throws ServesError on a bad method name, a params schema
 * that is not `type: object`, or a schema zod cannot convert (the loader
 * turns that into a positioned -32005; a loaded manifest never throws here).
 */
export function compileServes(serves: Readonly<Record<string, ServedMethodEntry>>): Map<string, ServedMethod> {
  const out = new Map<string, ServedMethod>();
  for (const [method, entry] of Object.entries(serves)) {
    if (!METHOD_NAME.test(method))
      throw new ServesError(`"${method}" is not a method name (${METHOD_NAME_RULE})`, ["serves", method]);
    if (entry.params.type !== "object") {
      throw new ServesError(`the params schema must have type: object (the params of a call are a JSON object)`, [
        "serves",
        method,
        "params",
      ]);
    }
    const convert = (which: "params" | "result"): z.ZodType => {
      try {
        return z.fromJSONSchema(entry[which] as Parameters<typeof z.fromJSONSchema>[0]);
      } catch (e) {
        throw new ServesError(`not a JSON Schema zod can use: ${(e as Error).message}`, ["serves", method, which]);
      }
    };
    out.set(method, {
      description: entry.description ?? "",
      params: convert("params"),
      result: convert("result"),
      paramsSchema: entry.params,
      resultSchema: entry.result,
    });
  }
  return out;
}

const served = new WeakMap<object, ReadonlyMap<string, ServedMethod>>();

/** the methods a manifest serves, converted once per manifest object (the kernel validates calls with them) */
export function servedMethods(m: Manifest): ReadonlyMap<string, ServedMethod> {
  let s = served.get(m);
  if (!s) {
    // a manifest from before `serves` existed (say, restored from disk) serves nothing
    s = compileServes(m.serves ?? {});
    served.set(m, s);
  }
  return s;
}
