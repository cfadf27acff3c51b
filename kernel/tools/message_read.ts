import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "message_read",
  // it removes what it returns, but only from the caller's own mailbox, which is in memory: a crash
  // before the reply loses them either way. If the records cannot be written, the caller gets the
  // error and the messages are gone (as they were when tool.result failed under the write-ahead).
  effect: "none",
  description: "Read (and remove) the messages other agents have sent to this agent, oldest first.",
  input: z.strictObject({ max: z.number().int().min(1).max(256).default(32) }),
  async run(ctx, input) {
    return { messages: ctx.services.readMessages(ctx.agentId, input.max) };
  },
});
