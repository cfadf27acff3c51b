// `call: AGENT.METHOD` and `call: AGENT.*`: parsing, canonical text,
// matching a call target, narrowing, and the resource check of the table.
import { describe, expect, test } from "bun:test";
import {
  CapabilityParseError,
  CapabilityTable,
  IMPLIED_TOOLS,
  callMatches,
  coversCapability,
  formatCapability,
  impliesTool,
  parseCallResource,
  parseCapability,
  type CallCapability,
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

describe("call: parsing and canonical text", () => {
  test.each([
    ["call: b.m", { kind: "call", agent: "b", method: "m" }, "call: b.m"],
    [
      "call:summariser.summarise",
      { kind: "call", agent: "summariser", method: "summarise" },
      "call: summariser.summarise",
    ],
    ["  call:   b.*  ", { kind: "call", agent: "b", method: "*" }, "call: b.*"],
    ["call: 9-a_b.get_2", { kind: "call", agent: "9-a_b", method: "get_2" }, "call: 9-a_b.get_2"],
  ])("%p", (text, parsed, text2) => {
    expect(parseCapability(text)).toEqual(parsed as CallCapability);
    expect(canon(text)).toBe(text2);
    // canonical text parses to itself
    expect(canon(text2)).toBe(text2);
  });

  test("names at the length limits", () => {
    const agent = "a".repeat(63);
    const method = "m".repeat(63);
    expect(canon(`call: ${agent}.${method}`)).toBe(`call: ${agent}.${method}`);
    expect(parseError(`call: ${"a".repeat(64)}.m`)).toContain("is not an agent name");
    expect(parseError(`call: b.${"m".repeat(64)}`)).toContain("is not a method name");
  });

  test("a value without a method says what is expected", () => {
    const msg = parseError("call: b");
    expect(msg).toContain('call "b"');
    expect(msg).toContain("expected AGENT.METHOD or AGENT.*");
  });

  test("an empty value shows an example", () => {
    expect(parseError("call:")).toContain('"call: summariser.summarise"');
  });

  test.each([
    ["call: B.m", "is not an agent name"],
    ["call: .m", "is not an agent name"],
    ["call: -b.m", "is not an agent name"],
    ["call: *.m", "is not an agent name"],
    ["call: b.", "is not a method name"],
    ["call: b.M", "is not a method name"],
    ["call: b.1m", "is not a method name"],
    ["call: b.m-x", "is not a method name"],
    ["call: b.m.n", "is not a method name"],
    ["call: b.m*", "is not a method name"],
    ["call: b.**", "is not a method name"],
    ["call: b .m", "is not an agent name"],
    ["call: b. m", "is not a method name"],
  ])("%p is refused (%s)", (text, why) => {
    const msg = parseError(text);
    expect(msg).toContain(why);
    expect(msg).toContain("expected AGENT.METHOD or AGENT.*");
  });

  test("the unknown-kind message lists call", () => {
    expect(parseError("cal: b.m")).toContain("call");
  });
});

describe("call: implied tools", () => {
  test("any call capability implies agent_call and agent_notify, nothing else", () => {
    expect(IMPLIED_TOOLS.call).toEqual(["agent_call", "agent_notify"]);
    for (const text of ["call: b.m", "call: b.*"]) {
      const c = parseCapability(text);
      expect(impliesTool(c, "agent_call")).toBe(true);
      expect(impliesTool(c, "agent_notify")).toBe(true);
      expect(impliesTool(c, "message_send")).toBe(false);
      expect(impliesTool(c, "b")).toBe(false);
    }
  });
});

describe("call: matching a target", () => {
  const exact = parseCapability("call: b.m") as CallCapability;
  const all = parseCapability("call: b.*") as CallCapability;

  test("b.m grants b.m only; b.* grants every method of b", () => {
    expect(callMatches(exact, "b", "m")).toBe(true);
    expect(callMatches(exact, "b", "n")).toBe(false);
    expect(callMatches(exact, "c", "m")).toBe(false);
    expect(callMatches(all, "b", "m")).toBe(true);
    expect(callMatches(all, "b", "anything")).toBe(true);
    expect(callMatches(all, "bb", "m")).toBe(false);
    expect(callMatches(all, "c", "m")).toBe(false);
  });

  test("a resource is exactly AGENT.METHOD", () => {
    expect(parseCallResource("b.m")).toEqual({ ok: true, agent: "b", method: "m" });
    for (const bad of ["b", "b.*", "b.", ".m", "B.m", "b.m.n", "", "b.m\0"]) {
      const r = parseCallResource(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toContain("is not AGENT.METHOD");
    }
    const nul = parseCallResource("b.m\0");
    expect(!nul.ok && nul.reason).toContain("\\x00");
  });
});

describe("call: narrowing", () => {
  const cov = (parent: string, child: string) => coversCapability(parseCapability(parent), parseCapability(child));

  test("call: b.* covers b.* and b.m", () => {
    expect(cov("call: b.*", "call: b.*")).toBe(true);
    expect(cov("call: b.*", "call: b.m")).toBe(true);
    expect(cov("call: b.*", "call: c.m")).toBe(false);
    expect(cov("call: b.*", "call: c.*")).toBe(false);
  });

  test("call: b.m covers only itself", () => {
    expect(cov("call: b.m", "call: b.m")).toBe(true);
    expect(cov("call: b.m", "call: b.n")).toBe(false);
    expect(cov("call: b.m", "call: b.*")).toBe(false);
    expect(cov("call: b.m", "call: c.m")).toBe(false);
  });

  test("the implied tools are covered by any call capability; other kinds never cover a call", () => {
    expect(cov("call: b.m", "tool: agent_call")).toBe(true);
    expect(cov("call: b.*", "tool: agent_notify")).toBe(true);
    expect(cov("call: b.m", "tool: message_send")).toBe(false);
    expect(cov("tool: agent_call", "call: b.m")).toBe(false);
    expect(cov("file_read: /*", "call: b.m")).toBe(false);
    expect(cov("call: b.*", "file_read: /b")).toBe(false);
  });
});

describe("call: through CapabilityTable", () => {
  function table() {
    return new CapabilityTable(() => 1_000_000);
  }

  test("checkResource grants a covered AGENT.METHOD and counts it", () => {
    const tab = table();
    const [t] = tab.grant("a", [{ capability: "call:  b.m", max_invocations: 2 }]);
    expect(t!.text).toBe("call: b.m");
    const r = tab.checkResource("a", "call", "b.m");
    expect(r.ok).toBe(true);
    expect(r.ok && r.token.id).toBe(t!.id);
    expect(t!.used).toBe(1);
    expect(tab.checkResource("a", "call", "b.m").ok).toBe(true);
    const spent = tab.checkResource("a", "call", "b.m");
    expect(spent).toMatchObject({ ok: false, capability: "call: b.m" });
    expect(!spent.ok && spent.reason).toContain("exhausted");
  });

  test("b.* grants every method of b and nothing of c; the refusal names what is held", () => {
    const tab = table();
    tab.grant("a", [{ capability: "call: b.*" }]);
    expect(tab.checkResource("a", "call", "b.m").ok).toBe(true);
    expect(tab.checkResource("a", "call", "b.other").ok).toBe(true);
    const r = tab.checkResource("a", "call", "c.m");
    expect(r).toMatchObject({ ok: false, capability: "call: c.m" });
    expect(!r.ok && r.reason).toBe("no call capability covers c.m; the agent holds call: b.*");
  });

  test("a malformed target is refused with a reason, never matched", () => {
    const tab = table();
    tab.grant("a", [{ capability: "call: b.*" }]);
    for (const bad of ["b", "b.*", "b.M", "b.m.n"]) {
      const r = tab.checkResource("a", "call", bad);
      expect(r.ok).toBe(false);
      expect(!r.ok && r.reason).toContain("is not AGENT.METHOD");
    }
  });

  test("a call token is no file or URL grant, and a file grant is no call grant", () => {
    const tab = table();
    tab.grant("a", [{ capability: "call: b.*" }, { capability: "file_read: /*" }]);
    expect(tab.checkResource("a", "file_read", "/b").ok).toBe(true);
    expect(tab.checkResource("a", "web_fetch", "https://b/").ok).toBe(false);
    const other = table();
    other.grant("x", [{ capability: "file_read: /*" }, { capability: "tool: agent_call" }]);
    expect(other.checkResource("x", "call", "b.m").ok).toBe(false);
  });

  test("tool level: a call token lets agent_call and agent_notify in uncounted", () => {
    const tab = table();
    const [t] = tab.grant("a", [{ capability: "call: b.m", max_invocations: 1 }]);
    expect(tab.mayCallTool("a", "agent_call")).toBe(true);
    expect(tab.mayCallTool("a", "agent_notify")).toBe(true);
    expect(tab.mayCallTool("a", "message_send")).toBe(false);
    expect(tab.checkTool("a", "agent_call").ok).toBe(true);
    expect(t!.used).toBe(0);
  });

  test("revoked tokens never authorise a call", () => {
    const tab = table();
    tab.grant("a", [{ capability: "call: b.*" }]);
    tab.revokeAll("a");
    const r = tab.checkResource("a", "call", "b.m");
    expect(!r.ok && r.reason).toContain("revoked");
  });

  test("covers: spawn narrowing with call tokens", () => {
    const tab = table();
    tab.grant("p", [{ capability: "call: b.*" }, { capability: "call: c.m" }]);
    expect(tab.covers("p", [{ capability: "call: b.m" }, { capability: "call: b.*" }]).ok).toBe(true);
    expect(tab.covers("p", [{ capability: "call: c.m" }, { capability: "tool: agent_notify" }]).ok).toBe(true);
    const wider = tab.covers("p", [{ capability: "call: c.*" }]);
    expect(wider).toMatchObject({ ok: false, capability: "call: c.*" });
    expect(tab.covers("p", [{ capability: "call: d.m" }]).ok).toBe(false);
    const bad = tab.covers("p", [{ capability: "call: b" }]);
    expect(!bad.ok && bad.reason).toContain("expected AGENT.METHOD or AGENT.*");
  });
});
