import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "memory_delete",
  effect: "irreversible",
  description:
    "Delete a memory record by its id (as memory_store or memory_search gave it): one of your own, or one in a shared namespace you hold `memory_write: NAMESPACE` on.",
  input: z.strictObject({
    id: z.string().min(1).max(64),
  }),
  async run(ctx, input) {
    const rec = ctx.services.memoryRecord(ctx.agentId, input.id);
    if (rec.namespace !== null) ctx.authorize("memory_write", rec.namespace);
    return ctx.services.memoryDelete(ctx.agentId, input.id);
  },
});
