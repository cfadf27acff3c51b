// The names the model sees. The Messages API (and most OpenAI-compatible
// servers) accept tool names matching ^[a-zA-Z0-9_-]{1,64}$; a kernel tool
// name may hold dots (an MCP server's tool is mcp.SERVER.TOOL, up to 132
// characters). Each run names its tools for the model once, and maps a
// tool_use back to the kernel's name before anything records or runs it.
import { createHash } from "node:crypto";
import type { ToolDescription } from "../services.ts";

const MODEL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** the model's name for a kernel tool: itself when it fits, else dots as "__", others as "_", long ones cut with a hash */
export function modelToolName(name: string): string {
  if (MODEL_NAME.test(name)) return name;
  const safe = name.replace(/\./g, "__").replace(/[^a-zA-Z0-9_-]/g, "_");
  if (safe.length <= 64) return safe;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, 8);
  return `${safe.slice(0, 55)}_${hash}`;
}

/** the run's tools as the model is shown them, and the way back from a tool_use's name */
export function modelTools(tools: readonly ToolDescription[]): {
  tools: ToolDescription[];
  kernelName(modelName: string): string;
} {
  const back = new Map<string, string>();
  const taken = new Set(tools.filter((t) => MODEL_NAME.test(t.name)).map((t) => t.name));
  const shown = tools.map((t) => {
    let n = modelToolName(t.name);
    if (n !== t.name && taken.has(n)) {
      // a rename that collides with another tool's own name: made unique by the full name's hash
      n = `${n.slice(0, 55)}_${createHash("sha256").update(t.name).digest("hex").slice(0, 8)}`;
    }
    taken.add(n);
    back.set(n, t.name);
    return n === t.name ? t : { ...t, name: n };
  });
  return { tools: shown, kernelName: (m) => back.get(m) ?? m };
}
