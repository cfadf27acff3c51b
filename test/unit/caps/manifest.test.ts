// grantFromManifest: a manifest's capabilities as the token specs spawn mints,
// plus the tools spawn_child and message_send imply, and nothing else.
import { expect, test } from "bun:test";
import { grantFromManifest } from "../../../kernel/caps/index.ts";
import { loadManifest } from "../../../kernel/manifest/index.ts";

const manifest = (body: string) =>
  loadManifest(`name: t\nmodel: claude-haiku-4-5-20251001\n${body}`, { knownAgents: new Set(["helper"]) });
const NOW = 1_700_000_000_000;

test("each capability becomes one spec, in order; limits and expiry carried over", () => {
  const m = manifest(
    `capabilities:\n  - echo\n  - "file_read: /data/files/*"\n  - capability: "file_write: /data/files/out/*"\n    max_invocations: 3\n    expires_in: 10m\n`,
  );
  expect(grantFromManifest(m, NOW)).toEqual([
    { capability: "echo" },
    { capability: "file_read: /data/files/*" },
    { capability: "file_write: /data/files/out/*", max_invocations: 3, expires_at: NOW + 600_000 },
  ]);
});

test("zero by default: no capabilities, no specs", () => {
  expect(grantFromManifest(manifest("capabilities: []\n"), NOW)).toEqual([]);
});

test("spawn_child implies spawn_agent; message_send implies message_send and message_read", () => {
  const m = manifest("capabilities: [echo]\nspawn_child: [helper]\nmessage_send: [helper]\n");
  expect(grantFromManifest(m, NOW).map((s) => s.capability)).toEqual([
    "echo",
    "tool: spawn_agent",
    "tool: message_send",
    "tool: message_read",
  ]);
});

test("an implied tool the manifest lists itself is not added twice, however it is spelled", () => {
  const m = manifest(
    `capabilities:\n  - "tool:spawn_agent"\n  - capability: message_send\n    max_invocations: 5\nspawn_child: [helper]\nmessage_send: [helper]\n`,
  );
  expect(grantFromManifest(m, NOW)).toEqual([
    { capability: "tool:spawn_agent" },
    { capability: "message_send", max_invocations: 5 },
    { capability: "tool: message_read" },
  ]);
});
