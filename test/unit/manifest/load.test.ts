// loadManifest's name checks: every capability, spawn_child and message_send
// entry must name a tool or agent the kernel knows, or the manifest is
// refused with -32005 and the entry's path, line and column.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { loadManifest, manifestNames, type LoadOptions } from "../../../kernel/manifest/index.ts";

const knownTools = new Set([
  "echo",
  "file_read",
  "file_list",
  "file_write",
  "web_fetch",
  "spawn_agent",
  "message_send",
  "message_read",
]);
const knownAgents = new Set(["helper", "reviewer"]);
const opts: LoadOptions = { knownTools, knownAgents };

/** the -32005 error loadManifest throws for this text */
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

describe("capabilities must name known tools", () => {
  test('"tool: NAME" naming no tool → at its list item, listing the known tools', () => {
    const e = refusal(`${head}capabilities:\n  - echo\n  - "tool: frobnicate"\n`);
    expect(e.data).toEqual({ source: "manifest", path: "capabilities[1]", line: 5, column: 5 });
    expect(e.message).toContain('unknown tool "frobnicate"');
    expect(e.message).toContain(
      "known: echo, file_list, file_read, file_write, message_read, message_send, spawn_agent, web_fetch",
    );
  });

  test("a bare tool name naming no tool, in a flow list", () => {
    const e = refusal(`${head}capabilities: [echo, frobnicate]\n`);
    expect(e.data).toMatchObject({ path: "capabilities[1]", line: 3, column: 22 });
    expect(e.message).toContain('invalid capability "frobnicate": unknown tool "frobnicate"');
  });

  test("the object form points at its capability field", () => {
    const e = refusal(`${head}capabilities:\n  - capability: "tool: frobnicate"\n    max_invocations: 2\n`);
    expect(e.data).toMatchObject({ path: "capabilities[0].capability", line: 4, column: 17 });
  });

  test("known tools, resource capabilities and their implied tools pass", () => {
    const m = loadManifest(
      `${head}capabilities:\n  - echo\n  - "tool: file_write"\n  - "file_read: /data/*"\n  - "web_fetch: https://example.org/*"\n  - capability: "tool: echo"\n    max_invocations: 3\n`,
      opts,
    );
    expect(m.capabilities).toHaveLength(5);
  });

  test("without knownTools nothing is checked beyond the grammar", () => {
    expect(loadManifest(`${head}capabilities: ["tool: frobnicate"]\n`).capabilities).toEqual(["tool: frobnicate"]);
  });

  test("a malformed capability is still a grammar error, not an unknown tool", () => {
    const e = refusal(`${head}capabilities:\n  - "fs_read: /x"\n`);
    expect(e.data).toMatchObject({ path: "capabilities[0]", line: 4, column: 5 });
    expect(e.message).toContain('unknown capability kind "fs_read"');
  });

  test("approval_required still names only known tools", () => {
    const e = refusal(`${head}approval_required: [echo, file_wrte]\n`);
    expect(e.data).toMatchObject({ path: "approval_required[1]", line: 3, column: 27 });
  });
});

describe("spawn_child must name known agents", () => {
  test("a name with no manifest → at its list item, listing the known ones", () => {
    const e = refusal(`${head}spawn_child:\n  - helper\n  - nonexistent\n`);
    expect(e.data).toMatchObject({ path: "spawn_child[1]", line: 5, column: 5 });
    expect(e.message).toContain(
      'unknown agent "nonexistent": there is no manifests/nonexistent.yaml (known: helper, reviewer)',
    );
  });

  test("in a flow list", () => {
    const e = refusal(`${head}spawn_child: [nonexistent]\n`);
    expect(e.data).toMatchObject({ path: "spawn_child[0]", line: 3, column: 15 });
  });

  test("the manifest's own name is not enough to spawn itself", () => {
    const e = refusal(`${head}spawn_child: [worker]\n`);
    expect(e.data).toMatchObject({ path: "spawn_child[0]", line: 3, column: 15 });
  });

  test("a name outside the manifest-name grammar is refused, even without knownAgents", () => {
    for (const o of [opts, {}]) {
      const e = refusal(`${head}spawn_child:\n  - "../etc/passwd"\n`, o);
      expect(e.data).toMatchObject({ path: "spawn_child[0]", line: 4, column: 5 });
      expect(e.message).toContain('"../etc/passwd" is not an agent name');
    }
    expect(refusal(`${head}spawn_child: [Helper]\n`, {}).data).toMatchObject({
      path: "spawn_child[0]",
      line: 3,
      column: 15,
    });
  });

  test("known names pass; without knownAgents any well-formed name passes", () => {
    expect(loadManifest(`${head}spawn_child: [helper, reviewer]\n`, opts).spawn_child).toEqual(["helper", "reviewer"]);
    expect(loadManifest(`${head}spawn_child: [anyone]\n`, { knownTools }).spawn_child).toEqual(["anyone"]);
  });

  test("an empty manifests/ directory says so", () => {
    const e = refusal(`${head}spawn_child: [helper]\n`, { knownAgents: new Set() });
    expect(e.message).toContain("(known: none)");
  });

  test("a long list of known agents is cut short", () => {
    const many = new Set(Array.from({ length: 40 }, (_, i) => `a${String(i).padStart(2, "0")}`));
    const e = refusal(`${head}spawn_child: [zz]\n`, { knownAgents: many });
    expect(e.message).toContain("a29, … 10 more)");
    expect(e.message).not.toContain("a30");
  });
});

describe("message_send must name known agents", () => {
  test("a name with no manifest → at its list item", () => {
    const e = refusal(`${head}message_send:\n  - reviewer\n  - nobody\n`);
    expect(e.data).toMatchObject({ path: "message_send[1]", line: 5, column: 5 });
    expect(e.message).toContain('unknown agent "nobody"');
    expect(e.message).toContain("known: helper, reviewer, worker");
  });

  test("the manifest's own name counts: an agent may message another instance of itself", () => {
    expect(loadManifest(`${head}message_send: [worker, helper]\n`, opts).message_send).toEqual(["worker", "helper"]);
  });

  test("a malformed name is refused at its position", () => {
    const e = refusal(`${head}message_send: [ok, "Bad Name"]\n`, {});
    expect(e.data).toMatchObject({ path: "message_send[1]", line: 3, column: 20 });
    expect(e.message).toContain("is not an agent name");
  });
});

describe("manifestNames", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "aaos-manifest-names-"));
    for (const f of ["alpha.yaml", "beta.yml", "notes.txt", "Upper.yaml", "with space.yaml", ".hidden.yaml"])
      writeFileSync(join(dir, f), "");
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "gamma.yaml"), "");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the .yaml and .yml files directly in the directory whose names are manifest names", () => {
    expect([...manifestNames(dir)].sort()).toEqual(["alpha", "beta"]);
  });

  test("a missing directory defines none", () => {
    expect(manifestNames(join(dir, "nope")).size).toBe(0);
  });
});
