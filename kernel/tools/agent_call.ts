import { z } from "zod";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "agent_call",
  // another agent acts on it: once answered, it cannot be taken back
  effect: "irreversible",
  description:
    "Call a method another agent serves (its manifest's serves:) and wait for its typed result. Needs the capability `call: AGENT.METHOD` (or `call: AGENT.*`). The params are checked against the method's schema before the call is delivered.",
  input: z.strictObject({
    to: z.string().min(1).describe("agent id or manifest name of the agent that serves the method"),
    method: z.string().min(1).max(128),
    params: z.record(z.string(), z.unknown()).default({}).describe("the method's params, as its schema describes them"),
    timeout_ms: z
      .number()
      .int()
      .min(1)
      .max(86_400_000)
      .optional()
      .describe("give up after this long (at most ipc.call_timeout)"),
  }),
  async run(ctx, input) {
    const to = ctx.services.status(resolveName(ctx, input.to));
    ctx.authorize("call", `${to.name}.${input.method}`);
    return ctx.services.call(ctx.agentId, {
      to: to.agent_id,
      method: input.method,
      params: input.params,
      ...(input.timeout_ms === undefined ? {} : { timeoutMs: input.timeout_ms }),
      ...(ctx.callKey === undefined ? {} : { key: ctx.callKey }),
      signal: ctx.signal,
    });
  },
});

/** an agent id as given, or the live agent of that manifest name */
export function resolveName(
  ctx: { services: { list(): { agent_id: string; name: string; state: string }[] } },
  to: string,
): string {
  if (to.startsWith("ag-")) return to;
  const live = ctx.services.list().find((a) => a.name === to && a.state !== "stopped");
  return live?.agent_id ?? to;
}
