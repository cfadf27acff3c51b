// ManifestCache: agents spawned from one text share one frozen Manifest, and
// a hit is exactly what a fresh load against the same names would return.
import { expect, test } from "bun:test";
import { loadManifest, ManifestCache } from "../../../kernel/manifest/index.ts";

const tools = new Set(["echo", "spawn_agent"]);
const text = "name: parent\nmodel: m\ncapabilities: [echo]\nspawn_child: [worker]\n";

test("one text, the same names: one shared, deep-frozen manifest and its SHA-256", () => {
  const cache = new ManifestCache();
  const a = cache.load(text, { knownTools: tools, knownAgents: new Set(["parent", "worker"]) });
  const b = cache.load(text, { knownTools: tools, knownAgents: new Set(["worker", "parent"]) });
  expect(b).toBe(a);
  expect(a.manifest).toEqual(loadManifest(text, { knownTools: tools, knownAgents: new Set(["parent", "worker"]) }));
  expect(a.sha256).toBe(new Bun.CryptoHasher("sha256").update(text).digest("hex"));
  expect(Object.isFrozen(a.manifest)).toBe(true);
  expect(Object.isFrozen(a.manifest.spawn_child)).toBe(true);
  expect(() => (a.manifest.spawn_child as string[]).push("other")).toThrow();
});

test("the names it was checked against are part of the key: a removed agent is refused again", () => {
  const cache = new ManifestCache();
  cache.load(text, { knownTools: tools, knownAgents: new Set(["parent", "worker"]) });
  expect(() => cache.load(text, { knownTools: tools, knownAgents: new Set(["parent"]) })).toThrow(
    /unknown agent "worker"/,
  );
  expect(() => cache.load(text, { knownTools: new Set(["spawn_agent"]), knownAgents: new Set(["worker"]) })).toThrow(
    /unknown tool "echo"/,
  );
});

test("an invalid text is refused every time, with its position", () => {
  const cache = new ManifestCache();
  for (let i = 0; i < 2; i++)
    expect(() => cache.load("name: x\nmodel: m\nbogus: 1\n", { knownTools: tools, knownAgents: new Set() })).toThrow(
      /line 3/,
    );
});

test("bounded: the oldest text is dropped first", () => {
  const cache = new ManifestCache(2);
  const opts = { knownTools: tools, knownAgents: new Set<string>() };
  const first = cache.load("name: a\nmodel: m\n", opts);
  cache.load("name: b\nmodel: m\n", opts);
  cache.load("name: c\nmodel: m\n", opts);
  expect(cache.load("name: a\nmodel: m\n", opts)).not.toBe(first);
});
