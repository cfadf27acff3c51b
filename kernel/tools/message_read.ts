import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "message_read",
  description: "Read (and remove) the messages other agents have sent to this agent, oldest first.",
  input: z.strictObject({ max: z.number().int().min(1).max(256).default(32) }),
  async run(ctx, input) {
    return { messages: ctx.services.readMessages(ctx.agentId, input.max) };
  },
});
