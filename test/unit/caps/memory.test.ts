// `memory_read: NAMESPACE` and `memory_write: NAMESPACE` (NAMESPACE a name or
// `*`): parsing, canonical text, implied tools, narrowing, and the resource
// check of the table (the resource is a namespace name, never `*` and never an
// agent's own `agent:<id>`).
import { describe, expect, test } from "bun:test";
import {
  CapabilityParseError,
  CapabilityTable,
  IMPLIED_TOOLS,
  NAMESPACE_NAME,
  NAMESPACE_RULE,
  coversCapability,
  formatCapability,
  impliesTool,
  namespaceMatches,
  parseCapability,
  type MemoryCapability,
} from "../../../kernel/caps/index.ts";

const canon = (s: string) => formatCapability(parseCapability(s));

function parseError(text: string): string {
  try {
    parseCapability(text);
  } catch (e) {
    expect(e).toBeInstanceOf(CapabilityParseError);
    return (e as Error).message;
  }
  throw new Error(`"${text}" parsed`);
}

describe("memory_read / memory_write: parsing and canonical text", () => {
  test.each([
    ["memory_read: team", { kind: "memory_read", namespace: "team" }, "memory_read: team"],
    ["memory_write:team", { kind: "memory_write", namespace: "team" }, "memory_write: team"],
    ["  memory_read:   *  ", { kind: "memory_read", namespace: "*" }, "memory_read: *"],
    ["memory_write: *", { kind: "memory_write", namespace: "*" }, "memory_write: *"],
    ["memory_read: 9.a-b_c", { kind: "memory_read", namespace: "9.a-b_c" }, "memory_read: 9.a-b_c"],
  ])("%p", (text, parsed, text2) => {
    expect(parseCapability(text)).toEqual(parsed as MemoryCapability);
    expect(canon(text)).toBe(text2);
    // canonical text parses to itself
    expect(canon(text2)).toBe(text2);
  });

  test("names at the length limit", () => {
    const name = "n".repeat(63);
    expect(canon(`memory_read: ${name}`)).toBe(`memory_read: ${name}`);
    expect(parseError(`memory_read: ${"n".repeat(64)}`)).toContain("is not a namespace name");
  });

  test("NAMESPACE_NAME is the rule the spec states", () => {
    expect(NAMESPACE_NAME.source).toBe("^[a-z0-9][a-z0-9_.-]{0,62}$");
    for (const ok of ["a", "0", "team", "a.b", "a-b", "a_b"]) expect(NAMESPACE_NAME.test(ok)).toBe(true);
    for (const bad of ["", "*", "A", ".a", "-a", "_a", "agent:ag-1", "a b", "a/b", "a*"])
      expect(NAMESPACE_NAME.test(bad)).toBe(false);
  });

  test("an empty value shows an example", () => {
    expect(parseError("memory_read:")).toContain('"memory_read: team" or "memory_read: *"');
    expect(parseError("memory_write:")).toContain('"memory_write: team" or "memory_write: *"');
  });

  test.each([
    "memory_read: Team",
    "memory_read: .team",
    "memory_read: -team",
    "memory_read: _team",
    "memory_read: te am",
    "memory_read: team*",
    "memory_read: **",
    "memory_write: a/b",
    "memory_write: ../team",
  ])("%p is refused with the rule and an example", (text) => {
    const msg = parseError(text);
    expect(msg).toContain("is not a namespace name");
    expect(msg).toContain(NAMESPACE_RULE);
    expect(msg).toContain('nor "*"');
    expect(msg).toMatch(/e\.g\. "memory_(read|write): team"/);
  });

  test("an agent's own namespace cannot be granted, and the message says it needs only the tool", () => {
    const msg = parseError("memory_read: agent:ag-0123");
    expect(msg).toContain('"agent:ag-0123" is not a namespace name');
    expect(msg).toContain("own memory needs no grant");
    expect(msg).toContain("tool: memory_search");
  });

  test("the unknown-kind message lists both kinds", () => {
    const msg = parseError("memory: team");
    expect(msg).toContain("memory_read");
    expect(msg).toContain("memory_write");
  });
});

describe("memory: implied tools", () => {
  test("memory_read implies memory_search; memory_write implies memory_store and memory_delete", () => {
    expect(IMPLIED_TOOLS.memory_read).toEqual(["memory_search"]);
    expect(IMPLIED_TOOLS.memory_write).toEqual(["memory_store", "memory_delete"]);
    for (const text of ["memory_read: team", "memory_read: *"]) {
      const c = parseCapability(text);
      expect(impliesTool(c, "memory_search")).toBe(true);
      expect(impliesTool(c, "memory_store")).toBe(false);
      expect(impliesTool(c, "memory_delete")).toBe(false);
      expect(impliesTool(c, "memory_block_update")).toBe(false);
    }
    for (const text of ["memory_write: team", "memory_write: *"]) {
      const c = parseCapability(text);
      expect(impliesTool(c, "memory_store")).toBe(true);
      expect(impliesTool(c, "memory_delete")).toBe(true);
      expect(impliesTool(c, "memory_search")).toBe(false);
    }
  });
});

describe("memory: matching a namespace", () => {
  test("* grants every named namespace; a name grants only itself", () => {
    expect(namespaceMatches("*", "team")).toBe(true);
    expect(namespaceMatches("*", "other.ns")).toBe(true);
    expect(namespaceMatches("team", "team")).toBe(true);
    expect(namespaceMatches("team", "team2")).toBe(false);
    expect(namespaceMatches("team", "tea")).toBe(false);
  });

  test("nothing grants a name that is not a namespace name: *, an agent's own, empty", () => {
    for (const grant of ["*", "team"]) {
      expect(namespaceMatches(grant, "*")).toBe(false);
      expect(namespaceMatches(grant, "agent:ag-1")).toBe(false);
      expect(namespaceMatches(grant, "")).toBe(false);
      expect(namespaceMatches(grant, "Team")).toBe(false);
    }
  });
});

describe("memory: narrowing", () => {
  const cov = (parent: string, child: string) => coversCapability(parseCapability(parent), parseCapability(child));

  test("* covers * and any name", () => {
    expect(cov("memory_read: *", "memory_read: *")).toBe(true);
    expect(cov("memory_read: *", "memory_read: team")).toBe(true);
    expect(cov("memory_write: *", "memory_write: *")).toBe(true);
    expect(cov("memory_write: *", "memory_write: x.y")).toBe(true);
  });

  test("a name covers only itself", () => {
    expect(cov("memory_read: team", "memory_read: team")).toBe(true);
    expect(cov("memory_read: team", "memory_read: other")).toBe(false);
    expect(cov("memory_read: team", "memory_read: *")).toBe(false);
    expect(cov("memory_write: team", "memory_write: *")).toBe(false);
  });

  test("read never covers write, nor write read", () => {
    expect(cov("memory_write: *", "memory_read: team")).toBe(false);
    expect(cov("memory_read: *", "memory_write: team")).toBe(false);
    expect(cov("memory_write: team", "memory_read: team")).toBe(false);
  });

  test("the implied tools are covered; other kinds never cover memory", () => {
    expect(cov("memory_read: team", "tool: memory_search")).toBe(true);
    expect(cov("memory_write: team", "tool: memory_store")).toBe(true);
    expect(cov("memory_write: *", "tool: memory_delete")).toBe(true);
    expect(cov("memory_read: *", "tool: memory_store")).toBe(false);
    expect(cov("tool: memory_search", "memory_read: team")).toBe(false);
    expect(cov("file_read: /*", "memory_read: team")).toBe(false);
    expect(cov("call: b.*", "memory_write: team")).toBe(false);
    expect(cov("memory_read: *", "file_read: /team")).toBe(false);
  });
});

describe("memory: through CapabilityTable", () => {
  function table() {
    return new CapabilityTable(() => 1_000_000);
  }

  test("checkResource grants a covered namespace and counts it", () => {
    const tab = table();
    const [t] = tab.grant("a", [{ capability: "memory_read:  team", max_invocations: 2 }]);
    expect(t!.text).toBe("memory_read: team");
    const r = tab.checkResource("a", "memory_read", "team");
    expect(r.ok).toBe(true);
    expect(r.ok && r.token.id).toBe(t!.id);
    expect(t!.used).toBe(1);
    expect(tab.checkResource("a", "memory_read", "team").ok).toBe(true);
    const spent = tab.checkResource("a", "memory_read", "team");
    expect(spent).toMatchObject({ ok: false, capability: "memory_read: team" });
    expect(!spent.ok && spent.reason).toContain("exhausted");
  });

  test("a name grants only itself; the refusal names what is held", () => {
    const tab = table();
    tab.grant("a", [{ capability: "memory_write: team" }]);
    expect(tab.checkResource("a", "memory_write", "team").ok).toBe(true);
    const r = tab.checkResource("a", "memory_write", "other");
    expect(r).toMatchObject({ ok: false, capability: "memory_write: other" });
    expect(!r.ok && r.reason).toBe(
      "no memory_write capability covers namespace other; the agent holds memory_write: team",
    );
  });

  test("* grants every named namespace", () => {
    const tab = table();
    tab.grant("a", [{ capability: "memory_read: *" }]);
    for (const ns of ["team", "x.y", "0"]) expect(tab.checkResource("a", "memory_read", ns).ok).toBe(true);
  });

  test("read is no write grant, and write is no read grant", () => {
    const tab = table();
    tab.grant("a", [{ capability: "memory_read: *" }]);
    tab.grant("b", [{ capability: "memory_write: *" }]);
    const r = tab.checkResource("a", "memory_write", "team");
    expect(!r.ok && r.reason).toBe("no memory_write capability covers namespace team");
    expect(tab.checkResource("b", "memory_read", "team").ok).toBe(false);
  });

  test("a resource that is not a namespace name is refused with a reason, even under *", () => {
    const tab = table();
    tab.grant("a", [{ capability: "memory_read: *" }, { capability: "memory_write: *" }]);
    for (const kind of ["memory_read", "memory_write"] as const) {
      for (const bad of ["*", "agent:ag-0123", "", "Team", "a/b", "team\0"]) {
        const r = tab.checkResource("a", kind, bad);
        expect(r.ok).toBe(false);
        expect(!r.ok && r.reason).toContain("is not a namespace name");
      }
    }
    const nul = tab.checkResource("a", "memory_read", "team\0");
    expect(!nul.ok && nul.reason).toContain("\\x00");
  });

  test("a memory token is no file, URL or call grant, and those are no memory grant", () => {
    const tab = table();
    tab.grant("a", [{ capability: "memory_read: *" }]);
    expect(tab.checkResource("a", "file_read", "/team").ok).toBe(false);
    expect(tab.checkResource("a", "call", "team.m").ok).toBe(false);
    const other = table();
    other.grant("x", [{ capability: "file_read: /*" }, { capability: "tool: memory_search" }]);
    expect(other.checkResource("x", "memory_read", "team").ok).toBe(false);
  });

  test("tool level: memory tokens let their tools in uncounted", () => {
    const tab = table();
    const [r] = tab.grant("a", [{ capability: "memory_read: team", max_invocations: 1 }]);
    expect(tab.mayCallTool("a", "memory_search")).toBe(true);
    expect(tab.mayCallTool("a", "memory_store")).toBe(false);
    expect(tab.checkTool("a", "memory_search").ok).toBe(true);
    expect(r!.used).toBe(0);
    tab.grant("a", [{ capability: "memory_write: team" }]);
    expect(tab.mayCallTool("a", "memory_store")).toBe(true);
    expect(tab.mayCallTool("a", "memory_delete")).toBe(true);
  });

  test("revoked tokens never authorise", () => {
    const tab = table();
    tab.grant("a", [{ capability: "memory_write: *" }]);
    tab.revokeAll("a");
    const r = tab.checkResource("a", "memory_write", "team");
    expect(!r.ok && r.reason).toContain("revoked");
  });

  test("covers: spawn narrowing with memory tokens", () => {
    const tab = table();
    tab.grant("p", [{ capability: "memory_read: *" }, { capability: "memory_write: team" }]);
    expect(tab.covers("p", [{ capability: "memory_read: *" }, { capability: "memory_read: x" }]).ok).toBe(true);
    expect(tab.covers("p", [{ capability: "memory_write: team" }, { capability: "tool: memory_delete" }]).ok).toBe(
      true,
    );
    const wider = tab.covers("p", [{ capability: "memory_write: *" }]);
    expect(wider).toMatchObject({ ok: false, capability: "memory_write: *" });
    expect(tab.covers("p", [{ capability: "memory_write: other" }]).ok).toBe(false);
    const bad = tab.covers("p", [{ capability: "memory_read: agent:ag-1" }]);
    expect(!bad.ok && bad.reason).toContain("is not a namespace name");
  });
});
