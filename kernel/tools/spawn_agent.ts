// spawn_agent: an agent starts a child. The kernel's spawn() does the real
// work (manifest check, coverage of every child capability by the parent's
// live tokens, spawn_child allow-list, depth and count limits, audit).
import { z } from "zod";
import { manifestSource, manifestSourceFields } from "../manifest/index.ts";
import { defineTool } from "./tool.ts";

export default defineTool({
  name: "spawn_agent",
  // changes the kernel's tables (an agent, its tokens) and may run the child: another principal acts
  effect: "irreversible",
  description:
    "Start a child agent from a manifest (YAML text) or a manifest name from the config partition. The " +
    "child's name must be listed in this agent's spawn_child, and every capability it asks for must be " +
    "covered by this agent's own. Optionally run it once with a message and return its answer.",
  input: manifestSource({
    manifest: manifestSourceFields.manifest.describe("child manifest as YAML text"),
    name: manifestSourceFields.name.describe("name of a manifest under /config/manifests"),
    message: z.string().optional().describe("if given, run the child once with this message and return its result"),
  }),
  async run(ctx, input) {
    const spawned = await ctx.services.spawn({ manifest: input.manifest, name: input.name }, ctx.agentId);
    if (input.message === undefined) return spawned;
    const result = await ctx.services.run(spawned.agent_id, input.message);
    return { ...spawned, result };
  },
});
