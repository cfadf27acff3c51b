import { z } from "zod";
import { defineTool } from "./tool.ts";
import { MemoryNamespace, MemoryTags } from "./memory_search.ts";

export default defineTool({
  name: "memory_store",
  // a kernel table changes (deletable, but not by the kernel on its own)
  effect: "irreversible",
  description:
    "Store a note in memory, to be found later with memory_search (across runs, and after a reboot for a persistent agent). Without a namespace it goes to your own memory; a shared namespace needs the capability `memory_write: NAMESPACE`. Returns the record's id (for memory_delete).",
  input: z.strictObject({
    text: z.string().min(1).describe("the note: a fact, a decision, something worth remembering"),
    tags: MemoryTags.optional(),
    namespace: MemoryNamespace.optional().describe("a shared namespace (needs memory_write: NAMESPACE)"),
  }),
  async run(ctx, input) {
    if (input.namespace !== undefined) ctx.authorize("memory_write", input.namespace);
    return ctx.services.memoryStore(ctx.agentId, {
      text: input.text,
      tags: input.tags ?? [],
      ...(input.namespace === undefined ? {} : { namespace: input.namespace }),
    });
  },
});
