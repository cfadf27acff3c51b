// Which provider serves a manifest's `model`, and where its key comes from.
//
//   anthropic:<model>            → Anthropic (explicit)
//   openai:<endpoint>/<model>    → the OpenAI-compatible endpoint <endpoint>
//   <model> listed in an endpoint's `models` → that endpoint
//   anything else (claude-...)   → Anthropic
//
// Keys: inference.providers.anthropic.api_key_file (relative to the config
// directory, or absolute) wins; otherwise $ANTHROPIC_API_KEY. The base URL:
// providers.anthropic.base_url, then $ANTHROPIC_BASE_URL, then the SDK's
// default. Every key loaded is registered as a secret (the audit log redacts
// it) and never logged. A key file is looked at (stat) before every model
// call: a key given or rotated with secret.set, or removed, takes effect at
// the next call, without a reboot.
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { Logger } from "pino";
import { ErrorCode, KernelError } from "../errors.ts";
import type { InferenceConfig, OpenAICompatibleEndpoint } from "./config.ts";
import { AnthropicProvider } from "./providers/anthropic.ts";
import { OpenAICompatibleProvider } from "./providers/openai.ts";
import type { Provider } from "./providers/types.ts";

export interface Route {
  provider: Provider;
  /** the model name sent on the wire */
  model: string;
  maxRetries: number;
}

export interface RouterDeps {
  env: Record<string, string | undefined>;
  configDir: string;
  log: Logger;
  registerSecret: (s: string) => void;
  scrub: (s: string) => string;
  fetch?: typeof fetch;
}

export function keyFile(configDir: string, file: string): string {
  return isAbsolute(file) ? file : join(configDir, file);
}

/** which providers a kernel can reach and where their keys come from (system.info `inference`); never a key */
export interface InferenceSummary {
  anthropic: {
    /** "api_key_file" (the file names a key), "ANTHROPIC_API_KEY" (the environment, host mode), or "none" */
    key_source: "api_key_file" | "ANTHROPIC_API_KEY" | "none";
    /** kernel.yaml's providers.anthropic.api_key_file, as written there; null when not set */
    api_key_file: string | null;
    base_url: string;
  };
  openai_compatible: { name: string; base_url: string; key: boolean; models: string[] }[];
}

function keyIn(configDir: string, file: string | undefined): boolean {
  if (!file) return false;
  try {
    return readFileSync(keyFile(configDir, file), "utf8").trim().length > 0;
  } catch {
    return false;
  }
}

/** the same choices as Router.anthropicProvider and resolve, looked at without building a provider or logging */
export function summarizeInference(
  cfg: InferenceConfig,
  configDir: string,
  env: Record<string, string | undefined>,
): InferenceSummary {
  const a = cfg.providers.anthropic;
  const key_source = keyIn(configDir, a.api_key_file)
    ? "api_key_file"
    : env.ANTHROPIC_API_KEY?.trim()
      ? "ANTHROPIC_API_KEY"
      : "none";
  return {
    anthropic: {
      key_source,
      api_key_file: a.api_key_file ?? null,
      base_url: a.base_url ?? (env.ANTHROPIC_BASE_URL?.trim() || "https://api.anthropic.com"),
    },
    openai_compatible: cfg.providers.openai_compatible.map((ep) => ({
      name: ep.name,
      base_url: ep.base_url,
      key: keyIn(configDir, ep.api_key_file),
      models: ep.models,
    })),
  };
}

export class Router {
  private anthropic: AnthropicProvider | null = null;
  private readonly openai = new Map<string, OpenAICompatibleProvider>();

  constructor(
    private readonly cfg: InferenceConfig,
    private readonly deps: RouterDeps,
  ) {}

  /** read a key file; null (and a log line without the key) when unreadable or empty */
  private readKey(file: string, what: string): string | null {
    const path = keyFile(this.deps.configDir, file);
    try {
      const k = readFileSync(path, "utf8").trim();
      if (!k) {
        this.deps.log.warn({ provider: what, key_file: path }, "API key file is empty");
        return null;
      }
      this.deps.registerSecret(k);
      return k;
    } catch (e) {
      this.deps.log.warn(
        { provider: what, key_file: path, code: (e as NodeJS.ErrnoException).code },
        "API key file not readable",
      );
      return null;
    }
  }

  /**
   * What a key file is now, without reading it: its inode, size and mtime
   * (secret.set replaces the file by a rename), or "absent". A change means
   * the provider is built again with what the file holds.
   */
  private keyStamp(file: string | undefined): string {
    if (!file) return "none";
    try {
      const st = statSync(keyFile(this.deps.configDir, file), { bigint: true });
      return `${st.ino}:${st.size}:${st.mtimeNs}`;
    } catch {
      return "absent";
    }
  }

  /** the Anthropic provider; built on first use, again when its key file changed (secret.set) or while it has no key */
  anthropicProvider(): AnthropicProvider {
    const a = this.cfg.providers.anthropic;
    const stamp = this.keyStamp(a.api_key_file);
    if (this.anthropic && this.hasAnthropicKey && stamp === this.anthropicStamp) return this.anthropic;
    const rotated = this.anthropic !== null && this.hasAnthropicKey;
    this.anthropicStamp = stamp;
    let key: string | null = null;
    let source = "none";
    if (a.api_key_file) {
      key = this.readKey(a.api_key_file, "anthropic");
      if (key) source = "api_key_file";
    }
    if (!key) {
      const envKey = this.deps.env.ANTHROPIC_API_KEY?.trim();
      if (envKey) {
        key = envKey;
        source = "ANTHROPIC_API_KEY";
        this.deps.registerSecret(envKey);
      }
    }
    const baseURL = a.base_url ?? (this.deps.env.ANTHROPIC_BASE_URL?.trim() || undefined);
    this.anthropic = new AnthropicProvider({
      apiKey: key,
      baseURL,
      timeoutMs: a.timeout_ms ?? this.cfg.request_timeout_ms,
      log: this.deps.log,
      scrub: this.deps.scrub,
      ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
    });
    this.hasAnthropicKey = key !== null;
    this.deps.log.info(
      {
        provider: "anthropic",
        key_source: source,
        base_url: this.anthropic.baseURL,
        ...(rotated ? { reloaded: true } : {}),
      },
      rotated ? "inference provider's key file changed; key reloaded" : "inference provider configured",
    );
    return this.anthropic;
  }
  private hasAnthropicKey = false;
  private anthropicStamp = "";
  private readonly openaiStamps = new Map<string, string>();

  /** an OpenAI-compatible endpoint's provider; built again when its key file changed */
  private openaiProvider(ep: OpenAICompatibleEndpoint): OpenAICompatibleProvider {
    let p = this.openai.get(ep.name);
    const stamp = this.keyStamp(ep.api_key_file);
    if (!p || this.openaiStamps.get(ep.name) !== stamp) {
      const key = ep.api_key_file ? this.readKey(ep.api_key_file, `openai:${ep.name}`) : null;
      p = new OpenAICompatibleProvider({
        endpoint: ep.name,
        baseURL: ep.base_url,
        apiKey: key,
        timeoutMs: ep.timeout_ms ?? this.cfg.request_timeout_ms,
        scrub: this.deps.scrub,
        ...(this.deps.fetch ? { fetch: this.deps.fetch } : {}),
      });
      this.openai.set(ep.name, p);
      this.openaiStamps.set(ep.name, stamp);
    }
    return p;
  }

  resolve(model: string): Route {
    const eps = this.cfg.providers.openai_compatible;
    // `provider` is looked up at each model call (loop.ts callModel reads it per call): a key
    // file changed since the run began is used from its next call
    const router = this;
    const viaEndpoint = (ep: OpenAICompatibleEndpoint, wire: string): Route => ({
      get provider() {
        return router.openaiProvider(ep);
      },
      model: wire,
      maxRetries: ep.max_retries ?? this.cfg.retry.max_retries,
    });
    if (model.startsWith("openai:")) {
      const rest = model.slice("openai:".length);
      const slash = rest.indexOf("/");
      const name = slash < 0 ? rest : rest.slice(0, slash);
      const wire = slash < 0 ? "" : rest.slice(slash + 1);
      const ep = eps.find((e) => e.name === name);
      if (!ep)
        throw new KernelError(
          ErrorCode.InferenceFailed,
          `no OpenAI-compatible endpoint named "${name}": add it under inference.providers.openai_compatible in kernel.yaml`,
          {
            model,
          },
        );
      if (!wire)
        throw new KernelError(
          ErrorCode.InferenceFailed,
          `model "${model}" names no model: use openai:${name}/<model>`,
          { model },
        );
      return viaEndpoint(ep, wire);
    }
    const listed = eps.find((e) => e.models.includes(model));
    if (listed) return viaEndpoint(listed, model);
    const a = this.cfg.providers.anthropic;
    this.anthropicProvider(); // built now: a missing key is logged at the run's start
    return {
      get provider() {
        return router.anthropicProvider();
      },
      model: model.startsWith("anthropic:") ? model.slice("anthropic:".length) : model,
      maxRetries: a.max_retries ?? this.cfg.retry.max_retries,
    };
  }

  /** scheduler limits per provider name */
  providerLimits(): Record<string, { rpm?: number | undefined; tpm?: number | undefined }> {
    const out: Record<string, { rpm?: number | undefined; tpm?: number | undefined }> = {
      anthropic: { rpm: this.cfg.providers.anthropic.rpm, tpm: this.cfg.providers.anthropic.tpm },
    };
    for (const ep of this.cfg.providers.openai_compatible) out[`openai:${ep.name}`] = { rpm: ep.rpm, tpm: ep.tpm };
    return out;
  }
}
