import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "memory_block_update",
  effect: "irreversible",
  description:
    "Replace the value of one of your pinned memory blocks (shown in your system prompt in <memory_blocks>, each with its label and character limit). The new value replaces the old one whole and must fit the block's limit.",
  input: z.strictObject({
    label: z.string().min(1).max(32),
    value: z.string().max(100_000),
  }),
  async run(ctx, input) {
    return ctx.services.memoryBlockUpdate(ctx.agentId, input.label, input.value);
  },
});
