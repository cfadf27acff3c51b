// grantFromManifest: what a manifest asks for, as the token specs the
// kernel mints at spawn (and checks a parent's tokens against, for a child).
// Pure: the manifest is already validated (kernel/manifest), so every
// capability string parses and every expires_in is a duration.
//
// Besides the manifest's own capabilities, spawn_child and message_send
// imply the tools that use them (spawn_agent; message_send and
// message_read), unless the manifest lists the tool itself. Nothing else is
// implied: zero by default.
import type { Manifest } from "../manifest/index.ts";
import { parseDuration } from "../manifest/schema.ts";
import type { TokenSpec } from "./table.ts";

export function grantFromManifest(m: Manifest, now: number): TokenSpec[] {
  const specs: TokenSpec[] = m.capabilities.map((c) =>
    typeof c === "string"
      ? { capability: c }
      : {
          capability: c.capability,
          max_invocations: c.max_invocations,
          expires_at: c.expires_in === undefined ? undefined : now + parseDuration(c.expires_in)!,
        },
  );
  const texts = new Set(specs.map((s) => s.capability.replace(/\s+/g, "")));
  const imply = (tool: string) => {
    if (!texts.has(`tool:${tool}`) && !texts.has(tool)) specs.push({ capability: `tool: ${tool}` });
  };
  if (m.spawn_child.length) imply("spawn_agent");
  if (m.message_send.length) {
    imply("message_send");
    imply("message_read");
  }
  return specs;
}
