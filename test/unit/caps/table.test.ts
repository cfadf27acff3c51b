import { describe, expect, test } from "bun:test";
import { CapabilityParseError, CapabilityTable } from "../../../kernel/caps/index.ts";

function table(now = { t: 1_000_000 }) {
  return { tab: new CapabilityTable(() => now.t), now };
}

describe("grant", () => {
  test("tokens carry random 128-bit ids and canonical text", () => {
    const { tab } = table();
    const ts = tab.grant("a", [
      { capability: "echo" },
      { capability: "file_read: /d//x/*", max_invocations: 3, expires_at: 5 },
    ]);
    expect(ts).toHaveLength(2);
    for (const t of ts) expect(t.id).toMatch(/^[0-9a-f]{32}$/);
    expect(ts[0]!.id).not.toBe(ts[1]!.id);
    expect(ts[1]).toMatchObject({
      agentId: "a",
      text: "file_read: /d/x/*",
      maxInvocations: 3,
      expiresAt: 5,
      used: 0,
      revoked: false,
    });
    expect(tab.tokens("a")).toHaveLength(2);
  });

  test("all or nothing: one bad spec grants none", () => {
    const { tab } = table();
    expect(() => tab.grant("a", [{ capability: "echo" }, { capability: "file_read: relative" }])).toThrow(
      CapabilityParseError,
    );
    expect(() => tab.grant("a", [{ capability: "echo", max_invocations: 0 }])).toThrow(/positive integer/);
    expect(() => tab.grant("a", [{ capability: "echo", max_invocations: 1.5 }])).toThrow(/positive integer/);
    expect(tab.tokens("a")).toHaveLength(0);
  });

  test("zero by default", () => {
    const { tab } = table();
    expect(tab.mayCallTool("nobody", "echo")).toBe(false);
    expect(tab.checkTool("nobody", "echo")).toMatchObject({ ok: false, capability: "tool: echo" });
    expect(tab.checkResource("nobody", "file_read", "/x")).toMatchObject({ ok: false, capability: "file_read: /x" });
    expect(tab.capabilityStrings("nobody")).toEqual([]);
  });
});

describe("tool level", () => {
  test("bare names, tool: NAME and implied tools", () => {
    const { tab } = table();
    tab.grant("a", [
      { capability: "web_search" },
      { capability: "file_read: /d/*" },
      { capability: "web_fetch: *.example.org" },
    ]);
    for (const tool of ["web_search", "file_read", "file_list", "web_fetch"])
      expect(tab.mayCallTool("a", tool)).toBe(true);
    for (const tool of ["file_write", "echo", "spawn_agent"]) expect(tab.mayCallTool("a", tool)).toBe(false);
    expect(tab.checkTool("a", "file_write")).toMatchObject({
      ok: false,
      reason: 'the agent holds no capability for tool "file_write"',
    });
  });

  test("max_invocations is counted at the check, before the tool runs, and exhausts", () => {
    const { tab } = table();
    tab.grant("a", [{ capability: "echo", max_invocations: 2 }]);
    expect(tab.checkTool("a", "echo").ok).toBe(true);
    expect(tab.tokens("a")[0]!.used).toBe(1);
    expect(tab.mayCallTool("a", "echo")).toBe(true); // mayCallTool does not count
    expect(tab.tokens("a")[0]!.used).toBe(1);
    expect(tab.checkTool("a", "echo").ok).toBe(true);
    const r = tab.checkTool("a", "echo");
    expect(r).toMatchObject({ ok: false, capability: "tool: echo" });
    expect(!r.ok && r.reason).toMatch(/exhausted \(max_invocations 2 used\)/);
    expect(tab.mayCallTool("a", "echo")).toBe(false);
    expect(tab.capabilityStrings("a")).toEqual([]);
  });

  test("an unlimited token is spent before a limited one", () => {
    const { tab } = table();
    const [limited, unlimited] = tab.grant("a", [
      { capability: "echo", max_invocations: 1 },
      { capability: "tool: echo" },
    ]);
    for (let i = 0; i < 5; i++)
      expect(tab.checkTool("a", "echo")).toMatchObject({ ok: true, token: { id: unlimited!.id } });
    expect(limited!.used).toBe(0);
  });

  test("a tool implied by a resource token is not counted twice in one call", () => {
    const { tab } = table();
    const [t] = tab.grant("a", [{ capability: "file_read: /d/*", max_invocations: 1 }]);
    expect(tab.checkTool("a", "file_read").ok).toBe(true);
    expect(t!.used).toBe(0);
    expect(tab.checkResource("a", "file_read", "/d/x").ok).toBe(true);
    expect(t!.used).toBe(1);
    expect(tab.checkTool("a", "file_read").ok).toBe(false);
    expect(tab.checkResource("a", "file_read", "/d/x").ok).toBe(false);
  });
});

describe("resource level", () => {
  test("paths: / boundary, normalisation, .., NUL", () => {
    const { tab } = table();
    tab.grant("a", [{ capability: "file_read: /data/*" }, { capability: "file_write: /data/out/*" }]);
    expect(tab.checkResource("a", "file_read", "/data").ok).toBe(true);
    expect(tab.checkResource("a", "file_read", "/data/x/../y").ok).toBe(true);
    expect(tab.checkResource("a", "file_read", "/data//./y").ok).toBe(true);
    expect(tab.checkResource("a", "file_read", "/data-x/y").ok).toBe(false);
    const esc = tab.checkResource("a", "file_read", "/data/../etc/passwd");
    expect(esc.ok).toBe(false);
    expect(!esc.ok && esc.reason).toMatch(/resolves to \/etc\/passwd/);
    expect(tab.checkResource("a", "file_read", "/../data/x").ok).toBe(false);
    const nul = tab.checkResource("a", "file_read", "/data/x\0.png");
    expect(nul).toMatchObject({
      ok: false,
      reason: "the path contains a NUL byte",
      capability: "file_read: /data/x\\x00.png",
    });
    expect(tab.checkResource("a", "file_read", "data/x").ok).toBe(false);
    expect(tab.checkResource("a", "file_write", "/data/x").ok).toBe(false);
    expect(tab.checkResource("a", "file_write", "/data/out/x/y").ok).toBe(true);
    expect(tab.checkResource("a", "file_write", "/data/out/../x").ok).toBe(false);
  });

  test("URLs", () => {
    const { tab } = table();
    tab.grant("a", [{ capability: "web_fetch: http://127.0.0.1:8080/*" }, { capability: "web_fetch: *.example.org" }]);
    expect(tab.checkResource("a", "web_fetch", "http://127.0.0.1:8080/x").ok).toBe(true);
    expect(tab.checkResource("a", "web_fetch", "http://127.0.0.2:8080/x").ok).toBe(false);
    expect(tab.checkResource("a", "web_fetch", "https://docs.example.org/").ok).toBe(true);
    expect(tab.checkResource("a", "web_fetch", "file:///etc/passwd")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/only http and https/),
    });
  });

  test("max_invocations on a resource token", () => {
    const { tab } = table();
    tab.grant("a", [{ capability: "file_read: /d/*", max_invocations: 2 }]);
    expect(tab.checkResource("a", "file_read", "/d/1").ok).toBe(true);
    expect(tab.checkResource("a", "file_read", "/d/2").ok).toBe(true);
    expect(tab.checkResource("a", "file_read", "/d/3")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/exhausted/),
    });
  });

  test("a refused check counts nothing", () => {
    const { tab } = table();
    const [t] = tab.grant("a", [{ capability: "file_read: /d/*", max_invocations: 1 }]);
    expect(tab.checkResource("a", "file_read", "/e").ok).toBe(false);
    expect(t!.used).toBe(0);
  });
});

describe("expiry and revocation", () => {
  test("an expired token never authorises", () => {
    const { tab, now } = table();
    tab.grant("a", [
      { capability: "echo", expires_at: now.t + 1000 },
      { capability: "file_read: /d/*", expires_at: now.t + 1000 },
    ]);
    expect(tab.checkTool("a", "echo").ok).toBe(true);
    expect(tab.checkResource("a", "file_read", "/d/x").ok).toBe(true);
    now.t += 1000;
    expect(tab.checkTool("a", "echo")).toMatchObject({ ok: false, reason: expect.stringMatching(/expired at/) });
    expect(tab.checkResource("a", "file_read", "/d/x")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired at/),
    });
    expect(tab.mayCallTool("a", "echo")).toBe(false);
    expect(tab.capabilityStrings("a")).toEqual([]);
  });

  test("revokeAll (stop) revokes every live token, once", () => {
    const { tab } = table();
    tab.grant("a", [{ capability: "echo" }, { capability: "file_read: /d/*" }]);
    tab.grant("b", [{ capability: "echo" }]);
    expect(tab.revokeAll("a")).toBe(2);
    expect(tab.revokeAll("a")).toBe(0);
    expect(tab.checkTool("a", "echo")).toMatchObject({ ok: false, reason: expect.stringMatching(/revoked/) });
    expect(tab.checkResource("a", "file_read", "/d/x").ok).toBe(false);
    expect(tab.capabilityStrings("a")).toEqual([]);
    expect(tab.tokens("a").every((t) => t.revoked)).toBe(true);
    expect(tab.checkTool("b", "echo").ok).toBe(true); // others untouched
  });

  test("ids are not proof: no method takes a token id", () => {
    const { tab } = table();
    const [t] = tab.grant("a", [{ capability: "echo" }]);
    // presenting another agent's token id as an agent id gets nothing
    expect(tab.checkTool(t!.id, "echo").ok).toBe(false);
  });
});

describe("covers (spawn narrowing)", () => {
  test("equal or narrower passes, wider fails with a reason", () => {
    const { tab } = table();
    tab.grant("p", [
      { capability: "file_read: /data/*" },
      { capability: "echo" },
      { capability: "web_fetch: *.example.org" },
    ]);
    expect(tab.covers("p", [])).toEqual({ ok: true });
    expect(
      tab.covers("p", [
        { capability: "file_read: /data/project/*" },
        { capability: "tool: echo" },
        { capability: "web_fetch: https://a.example.org/api/*" },
      ]),
    ).toEqual({ ok: true });
    expect(tab.covers("p", [{ capability: "file_list" }])).toEqual({ ok: true });
    const r = tab.covers("p", [{ capability: "echo" }, { capability: "file_read: /*" }]);
    expect(r).toMatchObject({ ok: false, capability: "file_read: /*" });
    expect(!r.ok && r.reason).toMatch(/no live capability covering/);
    expect(tab.covers("p", [{ capability: "file_write: /data/*" }])).toMatchObject({ ok: false });
    expect(tab.covers("p", [{ capability: "web_fetch: example.org" }])).toMatchObject({ ok: false });
    expect(tab.covers("p", [{ capability: "file_read: nope" }])).toMatchObject({
      ok: false,
      capability: "file_read: nope",
      reason: expect.stringMatching(/absolute/),
    });
  });

  test("max_invocations and expiry may not be looser", () => {
    const { tab, now } = table();
    tab.grant("p", [
      { capability: "echo", max_invocations: 3 },
      { capability: "file_read: /d/*", expires_at: now.t + 10_000 },
    ]);
    expect(tab.covers("p", [{ capability: "echo" }])).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/3 invocation\(s\) left/),
    });
    expect(tab.covers("p", [{ capability: "echo", max_invocations: 4 }]).ok).toBe(false);
    expect(tab.covers("p", [{ capability: "echo", max_invocations: 3 }]).ok).toBe(true);
    tab.checkTool("p", "echo");
    expect(tab.covers("p", [{ capability: "echo", max_invocations: 3 }]).ok).toBe(false);
    expect(tab.covers("p", [{ capability: "echo", max_invocations: 2 }]).ok).toBe(true);
    expect(tab.covers("p", [{ capability: "file_read: /d/x/*" }])).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/may not outlive/),
    });
    expect(tab.covers("p", [{ capability: "file_read: /d/x/*", expires_at: now.t + 20_000 }]).ok).toBe(false);
    expect(tab.covers("p", [{ capability: "file_read: /d/x/*", expires_at: now.t + 5_000 }]).ok).toBe(true);
  });

  test("only live parent tokens count", () => {
    const { tab } = table();
    tab.grant("p", [{ capability: "echo" }]);
    tab.revokeAll("p");
    expect(tab.covers("p", [{ capability: "echo" }]).ok).toBe(false);
  });
});
