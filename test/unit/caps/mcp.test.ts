// Grants of an external MCP server's tools: tool: mcp.SERVER.TOOL and tool: mcp.SERVER.*
import { describe, expect, test } from "bun:test";
import {
  coversCapability,
  formatCapability,
  impliesTool,
  mcpToolName,
  parseCapability,
  CapabilityParseError,
} from "../../../kernel/caps/index.ts";
import { modelToolName, modelTools } from "../../../kernel/llm/toolnames.ts";

const cap = (t: string) => parseCapability(t);

describe("mcp tool names", () => {
  test("mcp.S.T and mcp.S.* parse; the tool part keeps the server's own spelling", () => {
    expect(formatCapability(cap("tool: mcp.github.create_issue"))).toBe("tool: mcp.github.create_issue");
    expect(formatCapability(cap("mcp.github.*"))).toBe("tool: mcp.github.*");
    expect(mcpToolName("mcp.fs.read.v2")).toEqual({ server: "fs", tool: "read.v2" });
    expect(mcpToolName("mcp.fs.*")).toEqual({ server: "fs", tool: "*" });
    expect(mcpToolName("echo")).toBeNull();
  });

  test("a wildcard outside mcp., an empty or bad server, a bad tool are refused", () => {
    for (const bad of [
      "tool: echo.*",
      "tool: mcp..x",
      "tool: mcp.Git.x",
      "tool: mcp.git.",
      "tool: mcp.git.a b",
      "mcp.*",
    ])
      expect(() => cap(bad)).toThrow(CapabilityParseError);
  });

  test("mcp.S.* grants every tool of S and nothing of another server", () => {
    const c = cap("tool: mcp.gh.*");
    expect(impliesTool(c, "mcp.gh.create_issue")).toBe(true);
    expect(impliesTool(c, "mcp.gh.a.b")).toBe(true);
    expect(impliesTool(c, "mcp.ghx.create_issue")).toBe(false);
    expect(impliesTool(c, "mcp.g.h")).toBe(false);
    expect(impliesTool(c, "echo")).toBe(false);
    expect(impliesTool(cap("tool: mcp.gh.x"), "mcp.gh.y")).toBe(false);
  });

  test("narrowing: mcp.S.* covers mcp.S.T and mcp.S.*; mcp.S.T never covers mcp.S.*", () => {
    expect(coversCapability(cap("tool: mcp.gh.*"), cap("tool: mcp.gh.create_issue"))).toBe(true);
    expect(coversCapability(cap("tool: mcp.gh.*"), cap("tool: mcp.gh.*"))).toBe(true);
    expect(coversCapability(cap("tool: mcp.gh.create_issue"), cap("tool: mcp.gh.*"))).toBe(false);
    expect(coversCapability(cap("tool: mcp.gh.*"), cap("tool: mcp.other.*"))).toBe(false);
    expect(coversCapability(cap("tool: mcp.gh.a"), cap("tool: mcp.gh.b"))).toBe(false);
  });
});

describe("the names the model sees", () => {
  test("names the Messages API accepts are kept; dotted ones become mcp__S__T", () => {
    expect(modelToolName("file_read")).toBe("file_read");
    expect(modelToolName("mcp.gh.create_issue")).toBe("mcp__gh__create_issue");
    const long = `mcp.${"s".repeat(60)}.${"t".repeat(64)}`;
    expect(modelToolName(long)).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(modelToolName(long)).not.toBe(modelToolName(long + "x"));
  });

  test("a run maps every shown name back, also when a rename collides with a tool's own name", () => {
    const d = (name: string) => ({ name, description: "", effect: "none" as const, input_schema: {} });
    const m = modelTools([d("mcp__a__b"), d("mcp.a.b"), d("echo")]);
    const shown = m.tools.map((t) => t.name);
    expect(new Set(shown).size).toBe(3);
    for (const n of shown) expect(n).toMatch(/^[a-zA-Z0-9_-]{1,64}$/);
    expect(shown.map((n) => m.kernelName(n))).toEqual(["mcp__a__b", "mcp.a.b", "echo"]);
  });
});
