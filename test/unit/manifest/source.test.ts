// kernel/manifest/source.ts: exactly one of manifest or name, said in one place.
import { expect, test } from "bun:test";
import { z } from "zod";
import { hasOneSource, manifestSource, ONE_SOURCE_MESSAGE } from "../../../kernel/manifest/index.ts";
import spawnAgent from "../../../kernel/tools/spawn_agent.ts";

test("both or neither is refused with one message; either alone passes", () => {
  const s = manifestSource({ message: z.string().optional() });
  for (const bad of [{}, { manifest: "name: a", name: "a" }, { message: "hi" }]) {
    const r = s.safeParse(bad);
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toBe(ONE_SOURCE_MESSAGE);
    expect(hasOneSource(bad)).toBe(false);
  }
  expect(s.safeParse({ name: "a", message: "hi" }).success).toBe(true);
  expect(s.safeParse({ manifest: "name: a" }).success).toBe(true);
  expect(s.safeParse({ name: "a", extra: 1 }).success).toBe(false); // strict
});

test("the spawn_agent tool's input is the same schema", () => {
  expect(spawnAgent.input.safeParse({}).error!.issues[0]!.message).toBe(ONE_SOURCE_MESSAGE);
  expect(spawnAgent.input.safeParse({ name: "child", message: "go" }).success).toBe(true);
});
