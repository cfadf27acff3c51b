// web_fetch: an HTTP(S) GET or HEAD of a URL the agent holds `web_fetch` on.
// Redirects are followed here, not by fetch: ctx.authorize runs on the first
// URL and on every hop *before* connecting to it, so a granted host cannot
// bounce the kernel to one that is not. The body is streamed and cut at the
// byte cap; the whole call is bounded by the timeout and the agent's signal.
import { z } from "zod";
import { ErrorCode, invalidParams, KernelError } from "../errors.ts";
import { utf8Prefix } from "./file_read.ts";
import { defineTool } from "./tool.ts";

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export default defineTool({
  name: "web_fetch",
  // a request leaves the machine: whatever the server does with it cannot be taken back
  effect: "irreversible",
  description:
    "Fetch an http or https URL the agent holds a web_fetch capability on (GET or HEAD). Redirects are " +
    "followed only to URLs the agent may also fetch. Returns the final URL, status, content-type/content-" +
    "length headers, the body as text (cut at max_bytes), and whether it was cut.",
  input: z.strictObject({
    url: z.string().min(1).max(8192).describe("absolute http:// or https:// URL"),
    method: z.enum(["GET", "HEAD"]).optional().describe("GET (default) or HEAD"),
    max_bytes: z
      .number()
      .int()
      .positive()
      .optional()
      .describe("keep at most this many body bytes (capped by the kernel's limit)"),
  }),
  async run(ctx, input) {
    let url: string;
    try {
      url = new URL(input.url).href;
    } catch {
      throw invalidParams(`url: "${input.url}" is not an absolute URL`);
    }
    if (!/^https?:$/.test(new URL(url).protocol)) throw invalidParams("url: only http and https URLs can be fetched");
    let method: "GET" | "HEAD" = input.method ?? "GET";
    const max = Math.min(input.max_bytes ?? ctx.limits.webFetchMaxBytes, ctx.limits.webFetchMaxBytes);
    const timeoutMs = ctx.limits.webFetchTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any([ctx.signal, timeout]);

    const failed = (e: unknown): never => {
      if (ctx.signal.aborted)
        throw ctx.signal.reason instanceof Error
          ? ctx.signal.reason
          : new KernelError(ErrorCode.InternalError, "web_fetch: cancelled");
      if (timeout.aborted)
        throw new KernelError(ErrorCode.InternalError, `web_fetch: ${url}: no complete answer within ${timeoutMs} ms`, {
          url,
        });
      if (e instanceof KernelError) throw e;
      throw new KernelError(ErrorCode.InternalError, `web_fetch: ${url}: ${(e as Error)?.message ?? String(e)}`, {
        url,
      });
    };

    for (let hop = 0; ; hop++) {
      // every hop is authorised before we connect to it (throws -32001, audited by the kernel)
      ctx.authorize("web_fetch", url);
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          redirect: "manual",
          signal,
          headers: { "user-agent": "aaos-web_fetch/1", "accept-encoding": "identity" },
        });
      } catch (e) {
        return failed(e);
      }
      const location = res.headers.get("location");
      if (REDIRECTS.has(res.status) && location !== null) {
        await res.body?.cancel().catch(() => {});
        if (hop >= ctx.limits.webFetchMaxRedirects) {
          throw new KernelError(
            ErrorCode.InternalError,
            `web_fetch: more than ${ctx.limits.webFetchMaxRedirects} redirects (last to ${location})`,
            { url },
          );
        }
        let next: string;
        try {
          next = new URL(location, url).href;
        } catch {
          throw new KernelError(
            ErrorCode.InternalError,
            `web_fetch: ${url} redirected to an invalid URL "${location}"`,
            { url },
          );
        }
        if (res.status === 303 && method !== "HEAD") method = "GET";
        url = next;
        continue;
      }

      const headers: Record<string, string> = {};
      for (const h of ["content-type", "content-length"]) {
        const v = res.headers.get(h);
        if (v !== null) headers[h] = v;
      }
      let truncated = false;
      const chunks: Uint8Array[] = [];
      let total = 0;
      if (method !== "HEAD" && res.body) {
        const reader = res.body.getReader();
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            chunks.push(value);
            total += value.length;
            if (total > max) {
              truncated = true;
              break;
            }
          }
        } catch (e) {
          return failed(e);
        } finally {
          if (truncated) await reader.cancel().catch(() => {});
          reader.releaseLock();
        }
      }
      const all = new Uint8Array(Math.min(total, max));
      let off = 0;
      for (const c of chunks) {
        const take = Math.min(c.length, all.length - off);
        all.set(c.subarray(0, take), off);
        off += take;
        if (off >= all.length) break;
      }
      const { text } = utf8Prefix(all, truncated);
      return { url, status: res.status, headers, body: text, truncated };
    }
  },
});
