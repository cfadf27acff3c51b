import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "message_send",
  // another agent sees it: once read, it cannot be taken back
  effect: "irreversible",
  description:
    "Send a text message to another running agent, by agent id or name. The recipient's name must be listed in this agent's message_send.",
  input: z.strictObject({
    to: z.string().min(1).describe("agent id or manifest name of the recipient"),
    message: z.string().max(65536),
  }),
  async run(ctx, input) {
    return ctx.services.sendMessage(ctx.agentId, input.to, input.message);
  },
});
