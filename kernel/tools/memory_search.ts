import { z } from "zod";
import { NAMESPACE_NAME, NAMESPACE_RULE } from "../caps/index.ts";
import { parseDuration } from "../manifest/index.ts";
import { invalidParams } from "../errors.ts";
import { defineTool } from "./tool.ts";

export const MemoryNamespace = z.string().regex(NAMESPACE_NAME, NAMESPACE_RULE);
export const MemoryTags = z
  .array(
    z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/, "a tag is letters, digits, '_', '.', ':' and '-', at most 64"),
  )
  .max(16);

/** an ISO date, or a duration back from now ("7d", "12h") */
export function parseSince(s: string, now = Date.now()): number {
  const d = parseDuration(s);
  if (d !== null) return now - d;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw invalidParams(`since "${s}" is neither an ISO date nor a duration like "7d" or "12h"`);
  return t;
}

export default defineTool({
  name: "memory_search",
  effect: "none",
  description:
    "Search memory: your own notes and the archived earlier parts of your conversation (or, with a namespace, a shared namespace you hold `memory_read: NAMESPACE` on). Ranked by word match (BM25, stemmed) fused with recency. Returns the best k records with their ids.",
  input: z.strictObject({
    query: z.string().min(1).max(2000).describe("words to look for; any of them may match"),
    k: z.number().int().min(1).max(50).default(5).describe("how many results"),
    tags: MemoryTags.optional().describe("only records carrying every one of these tags"),
    since: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('only records newer than this: an ISO date or a duration like "7d"'),
    namespace: MemoryNamespace.optional().describe("a shared namespace (needs memory_read: NAMESPACE)"),
  }),
  async run(ctx, input) {
    if (input.namespace !== undefined) ctx.authorize("memory_read", input.namespace);
    const { results } = await ctx.services.memorySearch(ctx.agentId, {
      query: input.query,
      k: input.k,
      ...(input.tags ? { tags: input.tags } : {}),
      ...(input.since === undefined ? {} : { since: parseSince(input.since) }),
      ...(input.namespace === undefined ? {} : { namespace: input.namespace }),
    });
    // what the model needs of each hit (the operator's memory.search shows the whole record)
    return {
      results: results.map((r) => ({
        id: r.id,
        kind: r.kind,
        text: r.text,
        tags: r.tags,
        created_at: r.created_at,
        ...(r.namespace === null ? {} : { namespace: r.namespace }),
      })),
    };
  },
});
