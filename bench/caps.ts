// Capability checks per second: checkResource on path globs with 20 tokens
// per agent (the resource check every file tool makes), beside a baseline
// measured in the same run: the same paths tested against the same 20
// prefixes with a bare startsWith loop (no normalisation, no counting).
// Run directly: bun bench/caps.ts
import { CapabilityTable } from "../kernel/caps/index.ts";

import type { Figure } from "./figure.ts";
export type { Figure };

const TOKENS = 20;
const AGENTS = 50;

function setup() {
  const table = new CapabilityTable();
  const prefixes: string[] = [];
  for (let t = 0; t < TOKENS; t++) prefixes.push(`/data/agents/team${t}/project${t}`);
  for (let a = 0; a < AGENTS; a++) {
    table.grant(
      `agent-${a}`,
      prefixes.map((p, t) => ({ capability: t % 2 ? `file_read: ${p}/*` : `file_write: ${p}/*` })),
    );
  }
  // a mix: hits on the last token (worst case scan), hits early, misses, and `..` escapes
  const paths: string[] = [];
  for (let i = 0; i < 64; i++) {
    const t = i % 4 === 0 ? TOKENS - 1 : i % 4 === 1 ? 1 : (i * 7) % TOKENS;
    paths.push(
      i % 8 === 7
        ? `/data/agents/team${t}/project${t}/../../../etc/passwd`
        : i % 8 === 6
          ? `/data/agents/team${t}/project${t}-x/f`
          : `/data/agents/team${t}/project${t}/sub/dir/file${i}.txt`,
    );
  }
  return { table, prefixes, paths };
}

function rate(fn: (n: number) => number, minMs = 400): number {
  fn(2000); // warm up
  let n = 5000;
  for (;;) {
    const t0 = performance.now();
    fn(n);
    const ms = performance.now() - t0;
    if (ms >= minMs) return (n / ms) * 1000;
    n *= ms < minMs / 10 ? 10 : 2;
  }
}

export async function benchCaps(): Promise<Figure[]> {
  const { table, prefixes, paths } = setup();
  let sink = 0;

  const checkRate = rate((n) => {
    for (let i = 0; i < n; i++) {
      const r = table.checkResource(`agent-${i % AGENTS}`, "file_read", paths[i & 63]!);
      if (r.ok) sink++;
    }
    return sink;
  });

  const baselineRate = rate((n) => {
    for (let i = 0; i < n; i++) {
      const p = paths[i & 63]!;
      const agent = `agent-${i % AGENTS}`;
      if (agent.length === 0) continue;
      for (let t = 0; t < TOKENS; t++) {
        const pre = prefixes[t]!;
        if (p === pre || p.startsWith(pre + "/")) {
          sink++;
          break;
        }
      }
    }
    return sink;
  });

  const toolRate = rate((n) => {
    for (let i = 0; i < n; i++) if (table.checkTool(`agent-${i % AGENTS}`, "file_list").ok) sink++;
    return sink;
  });
  const mapRate = rate((n) => {
    const m = new Map<string, Set<string>>();
    for (let a = 0; a < AGENTS; a++) m.set(`agent-${a}`, new Set(["file_read", "file_list", "file_write"]));
    for (let i = 0; i < n; i++) if (m.get(`agent-${i % AGENTS}`)!.has("file_list")) sink++;
    return sink;
  });
  if (sink < 0) console.log(sink);

  return [
    {
      name: "caps.checkResource (path globs, 20 tokens/agent)",
      value: Math.round(checkRate),
      unit: "checks/s",
      baseline: { name: "startsWith loop over the same 20 prefixes", value: Math.round(baselineRate) },
      ratio: checkRate / baselineRate,
    },
    {
      name: "caps.checkTool (implied tool, 20 tokens/agent)",
      value: Math.round(toolRate),
      unit: "checks/s",
      baseline: { name: "Map<agent, Set<tool>> lookup", value: Math.round(mapRate) },
      ratio: toolRate / mapRate,
    },
  ];
}

if (import.meta.main) {
  for (const f of await benchCaps()) {
    console.log(
      `${f.name}: ${f.value.toLocaleString("en")} ${f.unit}` +
        (f.baseline
          ? `  | baseline ${f.baseline.name}: ${f.baseline.value.toLocaleString("en")} ${f.unit}  | ratio ${f.ratio!.toFixed(3)}`
          : ""),
    );
  }
}
