// Agent memory settings: a manifest's `memory:` (context window, compaction,
// pinned blocks) and kernel.yaml's `memory:` (quotas, archives, search,
// embeddings), each refused with the field's path, line and column.
import { describe, expect, test } from "bun:test";
import { MemoryConfigSchema, parseKernelConfig } from "../../../kernel/config.ts";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import {
  blockChars,
  loadManifest,
  ManifestMemorySchema,
  MAX_BLOCKS,
  type ManifestMemory,
} from "../../../kernel/manifest/index.ts";

function refusal(text: string): KernelError {
  try {
    loadManifest(text);
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    expect((e as KernelError).code).toBe(ErrorCode.InvalidManifest);
    return e as KernelError;
  }
  throw new Error("the manifest was accepted");
}

function configRefusal(text: string): KernelError {
  try {
    parseKernelConfig(text);
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    expect((e as KernelError).code).toBe(ErrorCode.InvalidParams);
    return e as KernelError;
  }
  throw new Error("kernel.yaml was accepted");
}

const head = "name: worker\nmodel: m\n";

describe("manifest memory:", () => {
  test("absent: no memory section", () => {
    expect(loadManifest(head).memory).toBeUndefined();
  });

  test("empty: the defaults", () => {
    expect(loadManifest(`${head}memory: {}\n`).memory).toEqual({ compaction_threshold: 0.7, blocks: [] });
  });

  test("every field", () => {
    const m = loadManifest(
      `${head}memory:
  context_window: 8000
  compaction_threshold: 0.5
  summarization_model: claude-haiku-4-5
  blocks:
    - label: persona
      limit: 500
      value: "I am a careful worker."
    - label: user_notes-2
      limit: 100
`,
    );
    expect(m.memory).toEqual({
      context_window: 8000,
      compaction_threshold: 0.5,
      summarization_model: "claude-haiku-4-5",
      blocks: [
        { label: "persona", limit: 500, value: "I am a careful worker." },
        { label: "user_notes-2", limit: 100, value: "" },
      ],
    } satisfies ManifestMemory);
  });

  test("the bounds are accepted", () => {
    const m = ManifestMemorySchema.parse({
      context_window: 1024,
      compaction_threshold: 0.1,
      blocks: [{ label: "a".repeat(32), limit: 100_000, value: "x".repeat(100_000) }],
    });
    expect(m.blocks[0]!.limit).toBe(100_000);
    expect(ManifestMemorySchema.parse({ context_window: 10_000_000, compaction_threshold: 0.95 }).context_window).toBe(
      10_000_000,
    );
    const blocks = Array.from({ length: MAX_BLOCKS }, (_, i) => ({ label: `b${i}`, limit: 1 }));
    expect(ManifestMemorySchema.parse({ blocks }).blocks).toHaveLength(16);
  });

  test("an unknown field is refused at its key", () => {
    const e = refusal(`${head}memory:\n  blockz: []\n`);
    expect(e.data).toEqual({ source: "manifest", path: "memory.blockz", line: 4, column: 3 });
    expect(e.message).toContain("unknown field");
  });

  test("an unknown field in a block is refused", () => {
    const e = refusal(`${head}memory:\n  blocks:\n    - {label: a, limit: 5, size: 3}\n`);
    expect(e.data).toMatchObject({ path: "memory.blocks[0].size", line: 5 });
  });

  test.each([
    ["context_window: 1023", "memory.context_window", 4, 19],
    ["context_window: 10000001", "memory.context_window", 4, 19],
    ["context_window: 8000.5", "memory.context_window", 4, 19],
    ["compaction_threshold: 0.05", "memory.compaction_threshold", 4, 25],
    ["compaction_threshold: 0.99", "memory.compaction_threshold", 4, 25],
    ['summarization_model: ""', "memory.summarization_model", 4, 24],
    ["blocks: {}", "memory.blocks", 4, 11],
  ])("%p is refused at %s", (line, path, l, c) => {
    const e = refusal(`${head}memory:\n  ${line}\n`);
    expect(e.data).toEqual({ source: "manifest", path, line: l, column: c });
  });

  test("a block needs a label and a limit", () => {
    expect(refusal(`${head}memory:\n  blocks:\n    - {limit: 5}\n`).data).toMatchObject({
      path: "memory.blocks[0].label",
      line: 5,
    });
    const e = refusal(`${head}memory:\n  blocks:\n    - {label: a}\n`);
    expect(e.data).toMatchObject({ path: "memory.blocks[0].limit", line: 5 });
    expect(e.message).toContain("required");
  });

  test.each(["A", "1a", "-a", "a b", "a.b", "a".repeat(33), ""])("the label %p is refused with the rule", (label) => {
    const e = refusal(`${head}memory:\n  blocks:\n    - label: "${label}"\n      limit: 5\n`);
    expect(e.data).toEqual({ source: "manifest", path: "memory.blocks[0].label", line: 5, column: 14 });
    expect(e.message).toContain("starting with a letter, at most 32 characters");
  });

  test.each(["0", "100001", "1.5", "-1"])("the limit %p is refused", (limit) => {
    const e = refusal(`${head}memory:\n  blocks:\n    - label: a\n      limit: ${limit}\n`);
    expect(e.data).toEqual({ source: "manifest", path: "memory.blocks[0].limit", line: 6, column: 14 });
  });

  test("a duplicate label is refused at the second one", () => {
    const e = refusal(
      `${head}memory:\n  blocks:\n    - {label: persona, limit: 5}\n    - {label: notes, limit: 5}\n    - {label: persona, limit: 9}\n`,
    );
    expect(e.data).toEqual({ source: "manifest", path: "memory.blocks[2].label", line: 7, column: 15 });
    expect(e.message).toContain('duplicate block label "persona"');
  });

  test("a value longer than its limit is refused at the value, saying both lengths", () => {
    const e = refusal(`${head}memory:\n  blocks:\n    - label: persona\n      limit: 5\n      value: abcdef\n`);
    expect(e.data).toEqual({ source: "manifest", path: "memory.blocks[0].value", line: 7, column: 14 });
    expect(e.message).toContain("6 characters");
    expect(e.message).toContain("limit of 5");
  });

  test("the limit counts characters (code points), not bytes or UTF-16 units", () => {
    expect(blockChars("héllo")).toBe(5);
    expect(blockChars("😀😀")).toBe(2);
    expect(
      loadManifest(`${head}memory:\n  blocks:\n    - {label: a, limit: 2, value: "😀é"}\n`).memory!.blocks,
    ).toEqual([{ label: "a", limit: 2, value: "😀é" }]);
    expect(refusal(`${head}memory:\n  blocks:\n    - {label: a, limit: 2, value: "😀éx"}\n`).data).toMatchObject({
      path: "memory.blocks[0].value",
    });
  });

  test(`more than ${MAX_BLOCKS} blocks are refused at blocks`, () => {
    const blocks = Array.from({ length: MAX_BLOCKS + 1 }, (_, i) => `    - {label: b${i}, limit: 1}\n`).join("");
    const e = refusal(`${head}memory:\n  blocks:\n${blocks}`);
    expect(e.data).toEqual({ source: "manifest", path: "memory.blocks", line: 5, column: 5 });
    expect(e.message).toContain(`at most ${MAX_BLOCKS} memory blocks`);
  });
});

describe("kernel.yaml memory:", () => {
  const defaults = {
    quota: {
      agent: { records: 10_000, bytes: 16 * 1024 * 1024 },
      namespace: { records: 100_000, bytes: 64 * 1024 * 1024 },
      namespaces: {},
    },
    max_namespaces: 256,
    archive_bytes: 64 * 1024 * 1024,
    max_record_bytes: 16 * 1024,
    recency_half_life: "30d",
  };

  test("absent: every default", () => {
    expect(parseKernelConfig("").memory).toEqual(defaults);
    expect(parseKernelConfig("memory: {}\n").memory).toEqual(defaults);
    expect(MemoryConfigSchema.parse({})).toEqual(defaults);
  });

  test("every field", () => {
    const c = parseKernelConfig(`inference:
  providers:
    openai_compatible:
      - name: local
        base_url: http://10.0.2.2:8000/v1
memory:
  quota:
    agent: {records: 10, bytes: 1000}
    namespace: {records: 20}
    namespaces:
      team: {records: 500, bytes: 1048576}
      shared.notes: {bytes: 2048}
  archive_bytes: 4096
  max_record_bytes: 1048576
  recency_half_life: 7d
  embeddings: openai:local/nomic-embed-text
`);
    expect(c.memory).toEqual({
      quota: {
        agent: { records: 10, bytes: 1000 },
        namespace: { records: 20, bytes: 64 * 1024 * 1024 },
        // a field an override leaves out keeps the `namespace` value
        namespaces: {
          team: { records: 500, bytes: 1_048_576 },
          "shared.notes": { records: 20, bytes: 2048 },
        },
      },
      max_namespaces: 256,
      archive_bytes: 4096,
      max_record_bytes: 1_048_576,
      recency_half_life: "7d",
      embeddings: "openai:local/nomic-embed-text",
    });
  });

  test("an unknown field is refused at its key", () => {
    const e = configRefusal("memory:\n  quota:\n    agents: {records: 1}\n");
    expect(e.data).toEqual({ source: "kernel.yaml", path: "memory.quota.agents", line: 3, column: 5 });
    expect(e.message).toContain("unknown field");
  });

  test.each([
    ["max_record_bytes: 0", "memory.max_record_bytes", 2, 21],
    ["max_record_bytes: 1048577", "memory.max_record_bytes", 2, 21],
    ["archive_bytes: 0", "memory.archive_bytes", 2, 18],
    ["archive_bytes: 1.5", "memory.archive_bytes", 2, 18],
    ["recency_half_life: soon", "memory.recency_half_life", 2, 22],
    ["quota: {agent: {records: -1}}", "memory.quota.agent.records", 2, 28],
    ["quota: {namespace: {bytes: 1.5}}", "memory.quota.namespace.bytes", 2, 30],
  ])("%p is refused at %s", (line, path, l, c) => {
    expect(configRefusal(`memory:\n  ${line}\n`).data).toEqual({ source: "kernel.yaml", path, line: l, column: c });
  });

  test("a per-namespace quota must name a namespace", () => {
    for (const ns of ["Team", "agent:ag-1", "-x"]) {
      const e = configRefusal(`memory:\n  quota:\n    namespaces:\n      "${ns}": {records: 1}\n`);
      expect(e.data).toMatchObject({ source: "kernel.yaml", path: `memory.quota.namespaces.${ns}`, line: 4 });
      expect(e.message).toContain(`"${ns}" is not a namespace name`);
    }
  });

  test.each(["nomic", "openai:", "openai:local", "openai:local/", "openai:/m", "ollama:local/m", "openai:-x/m"])(
    "embeddings %p is not openai:ENDPOINT/MODEL",
    (v) => {
      const e = configRefusal(`memory:\n  embeddings: "${v}"\n`);
      expect(e.data).toEqual({ source: "kernel.yaml", path: "memory.embeddings", line: 2, column: 15 });
      expect(e.message).toContain('expected "openai:ENDPOINT/MODEL"');
    },
  );

  test("embeddings naming no declared endpoint is refused, naming the known ones", () => {
    const none = configRefusal("memory:\n  embeddings: openai:local/nomic\n");
    expect(none.data).toEqual({ source: "kernel.yaml", path: "memory.embeddings", line: 2, column: 15 });
    expect(none.message).toContain('no inference.providers.openai_compatible endpoint is named "local"');
    expect(none.message).toContain("none is declared");
    const e = configRefusal(`inference:
  providers:
    openai_compatible:
      - {name: vllm, base_url: "http://h/v1"}
      - {name: ollama, base_url: "http://o/v1"}
memory:
  embeddings: openai:local/nomic
`);
    expect(e.data).toEqual({ source: "kernel.yaml", path: "memory.embeddings", line: 7, column: 15 });
    expect(e.message).toContain("the known endpoints: vllm, ollama");
  });

  test("the model part may hold slashes and colons", () => {
    const c = parseKernelConfig(`inference:
  providers:
    openai_compatible:
      - {name: hf.local, base_url: "http://h/v1"}
memory:
  embeddings: openai:hf.local/BAAI/bge-small:q8
`);
    expect(c.memory.embeddings).toBe("openai:hf.local/BAAI/bge-small:q8");
  });
});
