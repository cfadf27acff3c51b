import { z } from "zod";
import { resolveName } from "./agent_call.ts";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "agent_notify",
  // another agent sees it: once read, it cannot be taken back
  effect: "irreversible",
  description:
    "Send a one-way notification to a method another agent serves; nothing is answered. Needs the capability `call: AGENT.METHOD` (or `call: AGENT.*`); the params are checked against the method's schema.",
  input: z.strictObject({
    to: z.string().min(1).describe("agent id or manifest name of the agent that serves the method"),
    method: z.string().min(1).max(128),
    params: z.record(z.string(), z.unknown()).default({}),
  }),
  async run(ctx, input) {
    const to = ctx.services.status(resolveName(ctx, input.to));
    ctx.authorize("call", `${to.name}.${input.method}`);
    return ctx.services.notify(ctx.agentId, { to: to.agent_id, method: input.method, params: input.params });
  },
});
