import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "echo",
  effect: "none",
  description: "Returns its input unchanged. Useful to check that an agent can call tools at all.",
  input: z.strictObject({ message: z.string().max(65536).describe("the message to send back") }),
  async run(_ctx, input) {
    return { message: input.message };
  },
});
