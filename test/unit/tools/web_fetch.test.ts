// web_fetch against local Bun.serve servers: every redirect hop is
// authorised, a hop to a host/port not granted is refused before any
// connection to it, bodies are cut at the cap, and the timeout holds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ErrorCode, KernelError } from "../../../kernel/errors.ts";
import webFetch from "../../../kernel/tools/web_fetch.ts";
import { makeCtx, rejection } from "./tool-context.ts";

let target: ReturnType<typeof Bun.serve>; // 127.0.0.2: never granted
let targetHits = 0;
let hop: ReturnType<typeof Bun.serve>; // 127.0.0.1
let base: string;

beforeAll(() => {
  target = Bun.serve({
    hostname: "127.0.0.2",
    port: 0,
    fetch: () => {
      targetHits++;
      return new Response("internal secret");
    },
  });
  hop = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      switch (u.pathname) {
        case "/hello":
          return new Response("hello world", {
            headers: { "content-type": "text/plain; charset=utf-8", "x-other": "dropped" },
          });
        case "/away":
          return Response.redirect(`http://127.0.0.2:${target.port}/`, 302);
        case "/other-port":
          return Response.redirect(`http://127.0.0.1:${target.port === hop.port ? 1 : 9}/x`, 302);
        case "/inside":
          return new Response(null, { status: 301, headers: { location: "/hello" } });
        case "/see-other":
          return new Response(null, { status: 303, headers: { location: `/method` } });
        case "/method":
          return new Response(req.method);
        case "/loop":
          return new Response(null, { status: 302, headers: { location: "/loop" } });
        case "/file-scheme":
          return new Response(null, { status: 302, headers: { location: "file:///etc/passwd" } });
        case "/big":
          return new Response(
            new ReadableStream({
              async pull(c) {
                c.enqueue(new TextEncoder().encode("x".repeat(1024)));
                await Bun.sleep(1);
              },
            }),
          );
        case "/utf8":
          return new Response("ab€cd");
        case "/slow":
          await Bun.sleep(5000);
          return new Response("late");
        case "/api/ok":
          return new Response(null, { status: 302, headers: { location: "/private" } });
        case "/private":
          return new Response("private");
        default:
          return new Response("not found", { status: 404 });
      }
    },
  });
  base = `http://127.0.0.1:${hop.port}`;
});
afterAll(() => {
  target.stop(true);
  hop.stop(true);
});

const denied = (e: unknown) => {
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code).toBe(ErrorCode.CapabilityDenied);
  return e as KernelError;
};

describe("web_fetch", () => {
  test("a granted URL", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    const r = await webFetch.run(ctx, { url: `${base}/hello` });
    expect(r).toEqual({
      url: `${base}/hello`,
      status: 200,
      headers: { "content-type": "text/plain; charset=utf-8", "content-length": "11" },
      body: "hello world",
      truncated: false,
    });
    const h = (await webFetch.run(ctx, { url: `${base}/hello`, method: "HEAD" })) as any;
    expect(h).toMatchObject({ status: 200, body: "" });
  });

  test("a redirect to a host not granted is refused before connecting", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    const before = targetHits;
    const e = denied(await rejection(webFetch.run(ctx, { url: `${base}/away` })));
    expect(JSON.stringify(e)).not.toContain("internal secret");
    expect(ctx.denied[0]!.resource).toContain("127.0.0.2");
    expect(targetHits).toBe(before);
  });

  test("a redirect to another port of the same host is refused", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    denied(await rejection(webFetch.run(ctx, { url: `${base}/other-port` })));
  });

  test("a redirect out of a path-prefix grant is refused", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/api/*`]);
    denied(await rejection(webFetch.run(ctx, { url: `${base}/api/ok` })));
    expect(ctx.denied[0]!.resource).toBe(`${base}/private`);
  });

  test("a redirect to a non-http scheme is refused", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    const e = denied(await rejection(webFetch.run(ctx, { url: `${base}/file-scheme` })));
    expect(e.message).toMatch(/only http and https/);
  });

  test("granted redirects are followed, each hop authorised", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    const r = (await webFetch.run(ctx, { url: `${base}/inside` })) as any;
    expect(r).toMatchObject({ url: `${base}/hello`, status: 200, body: "hello world" });
    expect(ctx.authorized.map((a) => a.resource)).toEqual([`${base}/inside`, `${base}/hello`]);
    const s = (await webFetch.run(ctx, { url: `${base}/see-other` })) as any;
    expect(s.body).toBe("GET");
  });

  test("too many redirects", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`], { limits: { webFetchMaxRedirects: 3 } });
    const e = await rejection(webFetch.run(ctx, { url: `${base}/loop` }));
    expect(e.message).toMatch(/more than 3 redirects/);
    expect(ctx.authorized.length).toBe(4);
  });

  test("a host not granted at all", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    const before = targetHits;
    denied(await rejection(webFetch.run(ctx, { url: `http://127.0.0.2:${target.port}/` })));
    expect(targetHits).toBe(before);
  });

  test("the body is cut at the cap (an endless stream ends)", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`], { limits: { webFetchMaxBytes: 4096 } });
    const r = (await webFetch.run(ctx, { url: `${base}/big` })) as any;
    expect(r.truncated).toBe(true);
    expect(r.body.length).toBe(4096);
    const small = (await webFetch.run(ctx, { url: `${base}/big`, max_bytes: 10 })) as any;
    expect(small).toMatchObject({ truncated: true, body: "x".repeat(10) });
    const u = (await webFetch.run(ctx, { url: `${base}/utf8`, max_bytes: 4 })) as any;
    expect(u).toMatchObject({ truncated: true, body: "ab" });
  });

  test("the timeout and the agent's signal stop a slow server", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`], { limits: { webFetchTimeoutMs: 200 } });
    const e = await rejection(webFetch.run(ctx, { url: `${base}/slow` }));
    expect(e.message).toMatch(/within 200 ms/);
    const ac = new AbortController();
    const ctx2 = makeCtx([`web_fetch: ${base}/*`], { signal: ac.signal });
    setTimeout(() => ac.abort(new KernelError(ErrorCode.AgentNotRunnable, "agent was stopped")), 100);
    const e2 = await rejection(webFetch.run(ctx2, { url: `${base}/slow` }));
    expect(e2).toMatchObject({ code: ErrorCode.AgentNotRunnable });
  });

  test("bad URLs are invalid params", async () => {
    const ctx = makeCtx([`web_fetch: ${base}/*`]);
    expect(await rejection(webFetch.run(ctx, { url: "not a url" }))).toMatchObject({ code: ErrorCode.InvalidParams });
    expect(await rejection(webFetch.run(ctx, { url: "file:///etc/passwd" }))).toMatchObject({
      code: ErrorCode.InvalidParams,
    });
  });

  test("an exhausted token stops the next call", async () => {
    const ctx = makeCtx([{ capability: `web_fetch: ${base}/*`, max_invocations: 1 }]);
    await webFetch.run(ctx, { url: `${base}/hello` });
    denied(await rejection(webFetch.run(ctx, { url: `${base}/hello` })));
  });
});
