// Where the manifest of a spawn comes from: its YAML text (`manifest`) or
// the name of a file under <config>/manifests (`name`), exactly one of the
// two. This is the one place that says so: the RPC params of agent.spawn
// and agent.spawn_and_run and the spawn_agent tool's input are built from
// manifestSource(), and the kernel's spawn() (which its own code calls too)
// checks hasOneSource() with the same message.
import { z } from "zod";
import { MAX_MANIFEST_BYTES } from "./load.ts";

export const ONE_SOURCE_MESSAGE = "give exactly one of manifest or name";

export function hasOneSource(v: { manifest?: unknown; name?: unknown }): boolean {
  return (v.manifest === undefined) !== (v.name === undefined);
}

export const manifestSourceFields = {
  manifest: z.string().max(MAX_MANIFEST_BYTES).optional(),
  name: z.string().max(128).optional(),
};

/**
 * A strict object of the two source fields and `extra`, refusing anything
 * but exactly one source. `extra` may restate a source field to describe it.
 */
export function manifestSource<S extends z.ZodRawShape>(extra: S) {
  return z.strictObject({ ...manifestSourceFields, ...extra }).refine(hasOneSource, { message: ONE_SOURCE_MESSAGE });
}
