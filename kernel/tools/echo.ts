import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "echo",
  description: "Returns its input text unchanged. Useful to check that an agent can call tools at all.",
  input: z.strictObject({ text: z.string().max(65536).describe("text to send back") }),
  async run(_ctx, input) {
    return { text: input.text };
  },
});
