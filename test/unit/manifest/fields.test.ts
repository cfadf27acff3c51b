// The manifest fields of persistent agents and typed IPC: lifecycle,
// autostart, restart, serves (JSON Schemas converted with zod at load, and
// servedMethods() that validates calls with them), and the agent of a
// `call:` capability checked against the known agents.
import { describe, expect, test } from "bun:test";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import {
  loadManifest,
  ManifestCache,
  servedMethods,
  type LoadOptions,
  type Manifest,
} from "../../../kernel/manifest/index.ts";

const knownTools = new Set(["echo", "agent_call", "agent_notify"]);
const knownAgents = new Set(["helper", "reviewer"]);
const opts: LoadOptions = { knownTools, knownAgents };

function refusal(text: string, o: LoadOptions = opts): KernelError {
  try {
    loadManifest(text, o);
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    expect((e as KernelError).code).toBe(ErrorCode.InvalidManifest);
    return e as KernelError;
  }
  throw new Error("the manifest was accepted");
}

const head = "name: worker\nmodel: m\n";

describe("lifecycle", () => {
  test("defaults to session", () => {
    expect(loadManifest(head, opts).lifecycle).toBe("session");
  });

  test.each(["persistent", "session", "ephemeral"])("%p is accepted", (v) => {
    expect(loadManifest(`${head}lifecycle: ${v}\n`, opts).lifecycle).toBe(v as Manifest["lifecycle"]);
  });

  test("anything else is refused at lifecycle, naming the choices", () => {
    const e = refusal(`${head}lifecycle: forever\n`);
    expect(e.data).toEqual({ source: "manifest", path: "lifecycle", line: 3, column: 12 });
    expect(e.message).toContain("persistent");
    expect(e.message).toContain("session");
    expect(e.message).toContain("ephemeral");
  });
});

describe("autostart", () => {
  test("defaults to false", () => {
    expect(loadManifest(head, opts).autostart).toBe(false);
  });

  test("true with lifecycle: persistent", () => {
    const m = loadManifest(`${head}lifecycle: persistent\nautostart: true\n`, opts);
    expect(m.autostart).toBe(true);
  });

  test.each(["", "lifecycle: session\n", "lifecycle: ephemeral\n"])(
    "true without lifecycle: persistent is an error at autostart (%p)",
    (lifecycle) => {
      const e = refusal(`${head}${lifecycle}autostart: true\n`);
      expect(e.data).toMatchObject({ path: "autostart", line: lifecycle ? 4 : 3, column: 12 });
      expect(e.message).toContain("autostart needs lifecycle: persistent");
    },
  );

  test("false is fine with any lifecycle; a non-boolean is refused", () => {
    expect(loadManifest(`${head}lifecycle: ephemeral\nautostart: false\n`, opts).autostart).toBe(false);
    expect(refusal(`${head}autostart: yes please\n`).data).toMatchObject({ path: "autostart" });
  });
});

describe("restart", () => {
  test("defaults to never", () => {
    expect(loadManifest(head, opts).restart).toBe("never");
  });

  test.each(["never", "on-failure", "always"])("%p is accepted", (v) => {
    expect(loadManifest(`${head}restart: ${v}\n`, opts).restart).toBe(v as Manifest["restart"]);
  });

  test("anything else is refused at restart", () => {
    const e = refusal(`${head}restart: sometimes\n`);
    expect(e.data).toMatchObject({ path: "restart", line: 3, column: 10 });
    expect(e.message).toContain("on-failure");
  });
});

const serving = `${head}serves:
  summarise:
    description: Summarise a text
    params:
      type: object
      properties:
        text: {type: string, minLength: 1}
        max_words: {type: integer, minimum: 1}
      required: [text]
      additionalProperties: false
    result:
      type: object
      properties:
        summary: {type: string}
      required: [summary]
  ping:
    params: {type: object}
    result: {type: string}
`;

describe("serves", () => {
  test("defaults to {} and serves nothing", () => {
    const m = loadManifest(head, opts);
    expect(m.serves).toEqual({});
    expect(servedMethods(m).size).toBe(0);
  });

  test("methods keep their JSON Schemas and description", () => {
    const m = loadManifest(serving, opts);
    const served = servedMethods(m);
    expect([...served.keys()]).toEqual(["summarise", "ping"]);
    const s = served.get("summarise")!;
    expect(s.description).toBe("Summarise a text");
    expect(s.paramsSchema).toEqual({
      type: "object",
      properties: { text: { type: "string", minLength: 1 }, max_words: { type: "integer", minimum: 1 } },
      required: ["text"],
      additionalProperties: false,
    });
    expect(s.resultSchema).toEqual({
      type: "object",
      properties: { summary: { type: "string" } },
      required: ["summary"],
    });
    expect(served.get("ping")!.description).toBe("");
  });

  test("params validate and refuse through servedMethods()", () => {
    const s = servedMethods(loadManifest(serving, opts)).get("summarise")!;
    expect(s.params.safeParse({ text: "hello", max_words: 10 }).success).toBe(true);
    expect(s.params.safeParse({ text: "hello" }).success).toBe(true);
    const missing = s.params.safeParse({ max_words: 10 });
    expect(missing.success).toBe(false);
    expect(missing.error!.issues[0]!.path).toEqual(["text"]);
    expect(s.params.safeParse({ text: "" }).success).toBe(false);
    expect(s.params.safeParse({ text: "x", max_words: 1.5 }).success).toBe(false);
    expect(s.params.safeParse({ text: "x", extra: 1 }).success).toBe(false);
    expect(s.params.safeParse("x").success).toBe(false);
    expect(s.result.safeParse({ summary: "short" }).success).toBe(true);
    expect(s.result.safeParse({ summary: 3 }).success).toBe(false);
    const ping = servedMethods(loadManifest(serving, opts)).get("ping")!;
    expect(ping.result.safeParse("pong").success).toBe(true);
    expect(ping.result.safeParse({}).success).toBe(false);
  });

  test("converted once per manifest object, also when the cache deep-freezes it", () => {
    const m = loadManifest(serving, opts);
    expect(servedMethods(m)).toBe(servedMethods(m));
    const { manifest } = new ManifestCache().load(serving, { knownTools, knownAgents });
    expect(Object.isFrozen(manifest.serves.summarise!.params)).toBe(true);
    expect(servedMethods(manifest)).toBe(servedMethods(manifest));
    expect(servedMethods(manifest).get("summarise")!.params.safeParse({ text: "a" }).success).toBe(true);
  });

  test("a manifest object without serves (from before the field) serves nothing", () => {
    const m = { ...loadManifest(head, opts) } as Partial<Manifest>;
    delete m.serves;
    expect(servedMethods(m as Manifest).size).toBe(0);
  });

  test("a method name outside the grammar is refused at serves.NAME, pointing at the key", () => {
    const e = refusal(`${head}serves:\n  Summarise:\n    params: {type: object}\n    result: {}\n`);
    expect(e.data).toEqual({ source: "manifest", path: "serves.Summarise", line: 4, column: 3 });
    expect(e.message).toContain('"Summarise" is not a method name');
    expect(refusal(`${head}serves:\n  1go:\n    params: {type: object}\n    result: {}\n`).data).toMatchObject({
      path: "serves.1go",
    });
  });

  test("a schema zod cannot convert is refused at serves.METHOD.params / .result", () => {
    const p = refusal(
      `${head}serves:\n  go:\n    params:\n      type: object\n      if: {required: [a]}\n      then: {required: [b]}\n    result: {}\n`,
    );
    expect(p.data).toEqual({ source: "manifest", path: "serves.go.params", line: 6, column: 7 });
    expect(p.message).toContain("Conditional schemas");
    const r = refusal(`${head}serves:\n  go:\n    params: {type: object}\n    result: {type: frob}\n`);
    expect(r.data).toEqual({ source: "manifest", path: "serves.go.result", line: 6, column: 13 });
    expect(r.message).toContain("Unsupported type: frob");
    const ref = refusal(`${head}serves:\n  go:\n    params: {type: object}\n    result: {$ref: "http://x.test/s"}\n`);
    expect(ref.data).toMatchObject({ path: "serves.go.result" });
    const re = refusal(`${head}serves:\n  go:\n    params: {type: object}\n    result: {type: string, pattern: "("}\n`);
    expect(re.data).toMatchObject({ path: "serves.go.result" });
  });

  test("params must be a type: object schema; result may be any schema", () => {
    const e = refusal(`${head}serves:\n  go:\n    params: {type: string}\n    result: {type: string}\n`);
    expect(e.data).toEqual({ source: "manifest", path: "serves.go.params", line: 5, column: 13 });
    expect(e.message).toContain("type: object");
    expect(refusal(`${head}serves:\n  go:\n    params: {}\n    result: {}\n`).data).toMatchObject({
      path: "serves.go.params",
    });
    const m = loadManifest(`${head}serves:\n  go:\n    params: {type: object}\n    result: {}\n`, opts);
    expect(servedMethods(m).get("go")!.result.safeParse(42).success).toBe(true);
  });

  test("the entry is strict: params and result are required, other fields refused", () => {
    expect(refusal(`${head}serves:\n  go:\n    params: {type: object}\n`).data).toMatchObject({
      path: "serves.go.result",
    });
    expect(
      refusal(`${head}serves:\n  go:\n    params: {type: object}\n    result: {}\n    timeout: 3\n`).data,
    ).toMatchObject({ path: "serves.go.timeout", line: 7, column: 5 });
    expect(refusal(`${head}serves:\n  go:\n    params: [object]\n    result: {}\n`).data).toMatchObject({
      path: "serves.go.params",
    });
    expect(refusal(`${head}serves: [go]\n`).data).toMatchObject({ path: "serves" });
  });
});

describe("call: capabilities name known agents", () => {
  test("a known agent, or the manifest's own name, passes", () => {
    const m = loadManifest(`${head}capabilities:\n  - "call: helper.summarise"\n  - "call: worker.*"\n`, opts);
    expect(m.capabilities).toEqual(["call: helper.summarise", "call: worker.*"]);
  });

  test("an unknown agent is refused at the capability's path, listing the known ones", () => {
    const e = refusal(`${head}capabilities:\n  - echo\n  - "call: nobody.go"\n`);
    expect(e.data).toEqual({ source: "manifest", path: "capabilities[1]", line: 5, column: 5 });
    expect(e.message).toContain('unknown agent "nobody": there is no manifests/nobody.yaml');
    expect(e.message).toContain("known: helper, reviewer, worker");
  });

  test("in an object entry, at its capability field", () => {
    const e = refusal(`${head}capabilities:\n  - capability: "call: nobody.*"\n    max_invocations: 3\n`);
    expect(e.data).toMatchObject({ path: "capabilities[0].capability", line: 4, column: 17 });
  });

  test("without knownAgents any well-formed agent passes; a malformed one never does", () => {
    expect(loadManifest(`${head}capabilities: ["call: anyone.x"]\n`, { knownTools }).capabilities).toHaveLength(1);
    const e = refusal(`${head}capabilities: ["call: anyone"]\n`, { knownTools });
    expect(e.message).toContain("expected AGENT.METHOD or AGENT.*");
    expect(e.data).toMatchObject({ path: "capabilities[0]" });
  });
});
