import { describe, expect, test } from "bun:test";
import {
  CapabilityParseError,
  coversCapability,
  formatCapability,
  globMatches,
  normalizePath,
  parseCapability,
  parseResourceUrl,
  urlMatches,
  type Capability,
} from "../../../kernel/caps/index.ts";

const canon = (s: string) => formatCapability(parseCapability(s));

describe("grammar: valid strings", () => {
  test.each([
    ["web_search", "tool: web_search"],
    ["echo", "tool: echo"],
    ["tool: web_fetch", "tool: web_fetch"],
    ["  tool:   file_write  ", "tool: file_write"],
    ["file_read", "tool: file_read"],
    ["file_read: /data/project/*", "file_read: /data/project/*"],
    ["file_write: /data/output/*", "file_write: /data/output/*"],
    ["file_read: /data//./project/", "file_read: /data/project"],
    ["file_read: /data/notes.txt", "file_read: /data/notes.txt"],
    ["file_read: /*", "file_read: /*"],
    ["file_read: /", "file_read: /"],
    ["web_fetch: https://api.example.com/*", "web_fetch: https://api.example.com/*"],
    ["web_fetch: HTTPS://API.Example.COM/v1/*", "web_fetch: https://api.example.com/v1/*"],
    ["web_fetch: *.example.org", "web_fetch: *.example.org"],
    ["web_fetch: http://127.0.0.1:8080/*", "web_fetch: http://127.0.0.1:8080/*"],
    ["web_fetch: example.com.", "web_fetch: example.com"],
    ["web_fetch: http://[::1]:9000/x", "web_fetch: http://[::1]:9000/x"],
  ])("%p → %p", (input, expected) => {
    expect(canon(input)).toBe(expected);
    // canonical text parses to itself
    expect(canon(expected)).toBe(expected);
  });

  test("structure", () => {
    expect(parseCapability("file_read: /a/*")).toEqual({ kind: "file_read", glob: "/a/*" });
    expect(parseCapability("web_fetch: *.example.org")).toEqual({
      kind: "web_fetch",
      pattern: { host: "example.org", wildcard: true },
    });
    expect(parseCapability("web_fetch: http://h:81/p/*")).toEqual({
      kind: "web_fetch",
      pattern: { scheme: "http", host: "h", wildcard: false, port: 81, path: "/p/*" },
    });
  });
});

describe("grammar: parse errors with a precise message", () => {
  test.each([
    ["", /empty capability/],
    ["   ", /empty capability/],
    ["foo: bar", /unknown capability kind "foo"/],
    ["spawn_child: x", /unknown capability kind "spawn_child"/],
    ["file_read:", /"file_read:" needs a value/],
    ["file_write:   ", /"file_write:" needs a value/],
    ["tool:", /"tool:" needs a value/],
    ["tool: two words", /not a tool name/],
    ["has space", /not a tool name/],
    ["file_read: data/project/*", /must be absolute/],
    ["file_read: ./x", /must be absolute/],
    ["file_read: /data/\0/x", /NUL/],
    ["file_read: /data/../etc/*", /contains a "\.\." segment/],
    ["file_read: /data/..", /contains a "\.\." segment/],
    ["file_read: /data/*.txt", /only allowed as a final "\/\*"/],
    ["file_read: /data/*/x", /only allowed as a final "\/\*"/],
    ["file_read: *", /must be absolute/],
    ["file_read: /data*", /only allowed as a final/],
    ["file_write: /a/**", /only allowed as a final/],
    ["web_fetch: ftp://example.com", /only http and https/],
    ["web_fetch: https://exa*mple.com", /leading "\*\."/],
    ["web_fetch: https://*", /not a host name|leading/],
    ["web_fetch: https://example.com:99999", /port "99999"/],
    ["web_fetch: https://example.com:x", /port "x"/],
    ["web_fetch: https://example.com/a/../b", /"\.\." segment/],
    ["web_fetch: https://example.com/a/*/b", /only allowed as a final/],
    ["web_fetch: https://exa mple.com", /white space/],
    ["web_fetch: https://ex_$.com", /not a host name/],
  ])("%p", (input, message) => {
    let err: unknown;
    try {
      parseCapability(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CapabilityParseError);
    expect((err as Error).message).toMatch(message);
  });
});

describe("paths", () => {
  test("normalisation", () => {
    expect(normalizePath("/a//b/./c/")).toEqual({ ok: true, path: "/a/b/c", dotdot: false });
    expect(normalizePath("/a/b/../c")).toEqual({ ok: true, path: "/a/c", dotdot: true });
    expect(normalizePath("/..").ok).toBe(false);
    expect(normalizePath("/a/../../etc").ok).toBe(false);
    expect(normalizePath("relative").ok).toBe(false);
    expect(normalizePath("").ok).toBe(false);
    expect(normalizePath("/a\0b")).toEqual({ ok: false, reason: "the path contains a NUL byte" });
  });

  test("globs on a / boundary", () => {
    expect(globMatches("/data/*", "/data")).toBe(true);
    expect(globMatches("/data/*", "/data/x/y")).toBe(true);
    expect(globMatches("/data/*", "/data-x")).toBe(false);
    expect(globMatches("/data/*", "/datax/y")).toBe(false);
    expect(globMatches("/data/*", "/")).toBe(false);
    expect(globMatches("/data/f", "/data/f")).toBe(true);
    expect(globMatches("/data/f", "/data/f/g")).toBe(false);
    expect(globMatches("/*", "/anything/at/all")).toBe(true);
  });
});

describe("URLs", () => {
  const m = (pattern: string, url: string) => {
    const c = parseCapability(`web_fetch: ${pattern}`) as Extract<Capability, { kind: "web_fetch" }>;
    const u = parseResourceUrl(url);
    return u.ok && urlMatches(c.pattern, u.url);
  };
  test("host, scheme, port, path", () => {
    expect(m("https://api.example.com/*", "https://api.example.com/v1/x?q=1")).toBe(true);
    expect(m("https://api.example.com/*", "http://api.example.com/")).toBe(false);
    expect(m("https://api.example.com/*", "https://api.example.com:8443/")).toBe(false);
    expect(m("https://api.example.com/*", "https://api.example.com.evil.net/")).toBe(false);
    expect(m("https://api.example.com/*", "https://evil.net/?https://api.example.com/")).toBe(false);
    expect(m("https://api.example.com/*", "https://api.example.com@evil.net/")).toBe(false);
    expect(m("api.example.com", "http://api.example.com/x")).toBe(true);
    expect(m("api.example.com", "https://API.example.com./x")).toBe(true);
    expect(m("api.example.com", "http://api.example.com:8080/x")).toBe(false);
    expect(m("http://127.0.0.1:8080/*", "http://127.0.0.1:8080/a")).toBe(true);
    expect(m("http://127.0.0.1:8080/*", "http://127.0.0.2:8080/a")).toBe(false);
    expect(m("http://127.0.0.1:8080/*", "http://127.0.0.1:8081/a")).toBe(false);
  });
  test("wildcard hosts: sub-domains at any depth, not the bare domain", () => {
    expect(m("*.example.org", "https://a.example.org/")).toBe(true);
    expect(m("*.example.org", "https://a.b.example.org/")).toBe(true);
    expect(m("*.example.org", "https://example.org/")).toBe(false);
    expect(m("*.example.org", "https://badexample.org/")).toBe(false);
  });
  test("path prefixes on a / boundary; encoded tricks refused", () => {
    expect(m("https://h/api/*", "https://h/api")).toBe(true);
    expect(m("https://h/api/*", "https://h/api/v1")).toBe(true);
    expect(m("https://h/api/*", "https://h/apix")).toBe(false);
    expect(m("https://h/api/*", "https://h/api/../admin")).toBe(false);
    expect(m("https://h/api/*", "https://h/api/%2e%2e/admin")).toBe(false);
    expect(m("https://h/api/*", "https://h/api/..%2fadmin")).toBe(false);
    expect(m("https://h/api/*", "https://h/api%2F..%2Fadmin")).toBe(false);
  });
  test("non-http schemes and junk are refused", () => {
    expect(parseResourceUrl("file:///etc/passwd").ok).toBe(false);
    expect(parseResourceUrl("not a url").ok).toBe(false);
    expect(parseResourceUrl("http://h/\0").ok).toBe(false);
  });
});

describe("coversCapability (narrowing)", () => {
  const c = (a: string, b: string) => coversCapability(parseCapability(a), parseCapability(b));
  test("tools", () => {
    expect(c("echo", "tool: echo")).toBe(true);
    expect(c("echo", "web_search")).toBe(false);
    expect(c("file_read: /d/*", "tool: file_read")).toBe(true);
    expect(c("file_read: /d/*", "tool: file_list")).toBe(true);
    expect(c("file_read: /d/*", "tool: file_write")).toBe(false);
    expect(c("tool: file_read", "file_read: /d/*")).toBe(false);
  });
  test("paths", () => {
    expect(c("file_read: /d/*", "file_read: /d/*")).toBe(true);
    expect(c("file_read: /d/*", "file_read: /d/e/*")).toBe(true);
    expect(c("file_read: /d/*", "file_read: /d/e/f.txt")).toBe(true);
    expect(c("file_read: /d/*", "file_read: /d")).toBe(true);
    expect(c("file_read: /d/*", "file_read: /d-x/*")).toBe(false);
    expect(c("file_read: /d/*", "file_read: /*")).toBe(false);
    expect(c("file_read: /d/e/*", "file_read: /d/*")).toBe(false);
    expect(c("file_read: /d/f", "file_read: /d/f")).toBe(true);
    expect(c("file_read: /d/f", "file_read: /d/f/*")).toBe(false);
    expect(c("file_write: /d/*", "file_read: /d/*")).toBe(false);
    expect(c("file_read: /*", "file_read: /anything/*")).toBe(true);
  });
  test("URLs", () => {
    expect(c("web_fetch: *.example.org", "web_fetch: https://a.example.org/x/*")).toBe(true);
    expect(c("web_fetch: *.example.org", "web_fetch: *.a.example.org")).toBe(true);
    expect(c("web_fetch: *.example.org", "web_fetch: example.org")).toBe(false);
    expect(c("web_fetch: a.example.org", "web_fetch: *.example.org")).toBe(false);
    expect(c("web_fetch: https://h/*", "web_fetch: h")).toBe(false); // child would add http
    expect(c("web_fetch: h", "web_fetch: https://h/api/*")).toBe(true);
    expect(c("web_fetch: h", "web_fetch: https://h:443/api/*")).toBe(true);
    expect(c("web_fetch: h", "web_fetch: https://h:8443/")).toBe(false);
    expect(c("web_fetch: https://h/api/*", "web_fetch: https://h/api/v1/*")).toBe(true);
    expect(c("web_fetch: https://h/api/*", "web_fetch: https://h/*")).toBe(false);
    expect(c("web_fetch: https://h/api/*", "web_fetch: https://h")).toBe(false);
  });
});
