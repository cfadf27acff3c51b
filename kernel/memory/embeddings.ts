// Embeddings for hybrid memory search: kernel.yaml `memory.embeddings:
// openai:ENDPOINT/MODEL` names an OpenAI-compatible endpoint of
// inference.providers.openai_compatible; its /embeddings route (POST
// {model, input}) turns a text into a vector, kept beside the record in
// SQLite. An embedding that cannot be had (the endpoint down, a bad reply)
// is not an error: the record is stored without a vector and search falls
// back to BM25 with recency for it; the failure is logged.
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { OpenAICompatibleEndpoint } from "../llm/config.ts";
import { keyFile } from "../llm/router.ts";

export type Embed = (text: string, signal?: AbortSignal) => Promise<Float32Array | null>;

/** at most this long per embeddings request */
const TIMEOUT_MS = 10_000;
/** the text sent is cut to this many characters (embedding models take a few thousand tokens) */
const MAX_CHARS = 8000;

export function embeddingsClient(opts: {
  spec: string;
  endpoints: readonly OpenAICompatibleEndpoint[];
  configDir: string;
  registerSecret: (s: string) => void;
  log: Logger;
  fetch?: typeof fetch;
}): Embed {
  const rest = opts.spec.slice("openai:".length);
  const slash = rest.indexOf("/");
  const name = rest.slice(0, slash);
  const model = rest.slice(slash + 1);
  const ep = opts.endpoints.find((e) => e.name === name);
  // kernel.yaml's schema refuses an unknown endpoint; this is the belt to its braces
  if (!ep) throw new Error(`memory.embeddings: no OpenAI-compatible endpoint named "${name}"`);
  let key: string | null = null;
  if (ep.api_key_file) {
    try {
      key = readFileSync(keyFile(opts.configDir, ep.api_key_file), "utf8").trim() || null;
      if (key) opts.registerSecret(key);
    } catch (err) {
      opts.log.warn({ endpoint: name, code: (err as NodeJS.ErrnoException).code }, "embeddings key file not readable");
    }
  }
  const url = `${ep.base_url.replace(/\/+$/, "")}/embeddings`;
  const doFetch = opts.fetch ?? fetch;
  let warned = 0;
  return async (text, signal) => {
    try {
      const res = await doFetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ model, input: [text.slice(0, MAX_CHARS)] }),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]) : AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as { data?: { embedding?: unknown }[] };
      const v = body.data?.[0]?.embedding;
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== "number" || !Number.isFinite(x)))
        throw new Error("the reply holds no embedding");
      return Float32Array.from(v as number[]);
    } catch (err) {
      // one warning per minute at most: a down endpoint must not flood the log
      if (Date.now() - warned > 60_000) {
        warned = Date.now();
        opts.log.warn({ endpoint: name, err: String(err) }, "embeddings unavailable; memory search uses words only");
      }
      return null;
    }
  };
}
