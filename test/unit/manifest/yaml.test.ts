// YAML aliases: a "billion laughs" document, an alias with no anchor, one
// that contains itself, or too many of them are refused with a position,
// quickly and before anything is expanded, in a manifest (-32005) and in
// kernel.yaml (its own code) alike.
import { describe, expect, test } from "bun:test";
import { parseKernelConfig } from "../../../kernel/config.ts";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import { loadManifest } from "../../../kernel/manifest/index.ts";
import { MAX_ALIAS_EXPANSION, MAX_ALIASES, PositionedYaml } from "../../../kernel/manifest/yaml.ts";

const head = "name: x\nmodel: m\n";
/** nine levels of nine: 9^9 (387 million) scalars once expanded */
const laughs =
  ["a: &a [x, x, x, x, x, x, x, x, x]"]
    .concat(
      "bcdefghi".split("").map(
        (k, i) =>
          `${k}: &${k} [${Array(9)
            .fill("*" + "abcdefghi"[i])
            .join(", ")}]`,
      ),
    )
    .join("\n") + "\n";

function refusal(text: string): KernelError {
  try {
    loadManifest(text, { knownTools: new Set(["echo"]) });
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    expect((e as KernelError).code).toBe(ErrorCode.InvalidManifest);
    return e as KernelError;
  }
  throw new Error("the manifest was accepted");
}

describe("an alias bomb", () => {
  test("in a manifest is an invalid manifest at the alias that crosses the line, fast and small", () => {
    const heap = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const e = refusal(head + laughs);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(64 * 1024 * 1024);
    // a..d expand to 8,289 added nodes; the first *d of e passes 10,000
    expect(e.data).toEqual({ source: "manifest", path: "e[0]", line: 7, column: 8 });
    expect(e.message).toContain(`aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes`);
  });

  test("hidden in a real field", () => {
    const text =
      `${head}description: &d0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\ncapabilities:\n` +
      Array.from(
        { length: 12 },
        (_, i) => `  - &d${i + 1} [*d${i}, *d${i}, *d${i}, *d${i}, *d${i}, *d${i}, *d${i}, *d${i}, *d${i}, *d${i}]\n`,
      ).join("");
    const e = refusal(text);
    expect(e.data).toMatchObject({ path: "capabilities[2][7]", line: 7, column: 45 });
  });

  test("in kernel.yaml is a positioned config error, not a throw", () => {
    let err: unknown;
    try {
      parseKernelConfig(laughs, "kernel.yaml");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe(ErrorCode.InvalidParams);
    expect((err as KernelError).data).toMatchObject({ source: "kernel.yaml", path: "e[0]", line: 5, column: 8 });
  });
});

describe("other alias abuse", () => {
  test(`more than ${MAX_ALIASES} aliases, even cheap ones: refused at the one too many, quickly on 256 KiB`, () => {
    let text = `${head}description: &s x\ncapabilities: [`;
    while (text.length < 250_000) text += "*s, ";
    text += "]\n";
    const t0 = performance.now();
    const e = refusal(text);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(e.data).toMatchObject({ path: `capabilities[${MAX_ALIASES}]`, line: 4, column: 16 + 4 * MAX_ALIASES });
    expect(e.message).toContain(`more than ${MAX_ALIASES} aliases`);
  });

  test("many distinct anchors with their aliases do not take quadratic time", () => {
    let text = `${head}capabilities: [`;
    for (let i = 0; text.length < 250_000; i++) text += `&a${i} echo, *a${i}, `;
    text += "]\n";
    const t0 = performance.now();
    expect(refusal(text).message).toContain(`more than ${MAX_ALIASES} aliases`);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  test("an alias with no anchor before it", () => {
    const e = refusal(`${head}capabilities:\n  - *nope\n  - &nope echo\n`);
    expect(e.data).toMatchObject({ path: "capabilities[0]", line: 4, column: 5 });
    expect(e.message).toContain("alias *nope has no anchor &nope before it");
  });

  test("an alias inside the node it names", () => {
    const e = refusal(`${head}capabilities: &loop [echo, *loop]\n`);
    expect(e.data).toMatchObject({ path: "capabilities[1]", line: 3, column: 28 });
    expect(e.message).toContain("refers to a node that contains it");
  });

  test("a few ordinary aliases still work", () => {
    const m = loadManifest(
      `${head}description: &cap "tool: echo"\ncapabilities: [*cap, *cap]\napproval_required: [&t echo]\nmessage_send: []\n`,
      { knownTools: new Set(["echo"]) },
    );
    expect(m.capabilities).toEqual(["tool: echo", "tool: echo"]);
  });

  test("a redefined anchor: an alias names the latest one before it", () => {
    const p = PositionedYaml.parse("a: &x 1\nb: *x\nc: &x [2, 3]\nd: *x\n");
    expect("value" in p && p.value).toEqual({ a: 1, b: 1, c: [2, 3], d: [2, 3] });
  });

  test("nesting too deep for the parser is a positioned error", () => {
    const p = PositionedYaml.parse("a: " + "[".repeat(50_000) + "]".repeat(50_000) + "\n");
    expect("error" in p && p.error.line).toBe(1);
  });
});
