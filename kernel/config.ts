// kernel.yaml: the kernel's own settings, read from the config directory
// (host mode: --config DIR; the image: the AAOS-CFG partition at /config).
// Every field is optional; an absent file means all defaults. A bad file is
// an error with line and column, like a manifest (in init mode the kernel
// boots on defaults instead and reports it: loadKernelConfig). The kernel
// owns this schema, every section included; init/ takes its `network:` from
// the one parse kernel/main.ts makes.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { parseDuration } from "./manifest/index.ts";
import { describe, PositionedYaml, type PositionedError } from "./manifest/yaml.ts";
import { KernelError, ErrorCode } from "./errors.ts";
import { InferenceConfigSchema } from "./llm/config.ts";
import { MCP_SERVER_NAME, NAMESPACE_NAME, NAMESPACE_RULE } from "./caps/grammar.ts";

const Duration = z
  .string()
  .refine((s) => parseDuration(s) !== null, { message: 'expected a duration like "30s" or "10m"' });

const McpName = z.string().regex(MCP_SERVER_NAME, {
  message: "lower-case letters, digits, '-' and '_', at most 63 characters",
});

/** kernel.yaml `mcp.clients.NAME`: a principal the kernel serves over MCP */
export const McpClientSchema = z.strictObject({
  /** the manifest whose capabilities are exactly what the client may do */
  manifest: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: "expected a manifest name" }),
  /** relative to the config directory: the bearer token of /mcp (absent: no HTTP, aaosctl mcp only) */
  token_file: z.string().min(1).optional(),
  /** a gateway: the client also sees this server's tools (their own names), resources and prompts */
  upstream: McpName.optional(),
});

/** kernel.yaml `mcp.servers.NAME`: an external MCP server whose tools agents may be granted */
export const McpServerSchema = z
  .strictObject({
    /** Streamable HTTP */
    url: z.url({ protocol: /^https?$/, message: "expected an http:// or https:// URL" }).optional(),
    /** a stdio server: the program and its arguments (host mode only) */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** relative to the config directory: a bearer token sent to the server */
    token_file: z.string().min(1).optional(),
    timeout: Duration.default("30s"),
    max_result_bytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(1024 * 1024),
  })
  .superRefine((v, ctx) => {
    if ((v.url === undefined) === (v.command === undefined))
      ctx.addIssue({
        code: "custom",
        path: [],
        message: "give exactly one of url (Streamable HTTP) or command (stdio)",
      });
  });

export const McpConfigSchema = z
  .strictObject({
    clients: z.record(McpName, McpClientSchema).default({}),
    servers: z.record(McpName, McpServerSchema).default({}),
    /** a tool annotated destructiveHint needs an approval, for every agent */
    approve_destructive: z.boolean().default(false),
    /** the client whose principal answers /mcp requests without a token, from loopback addresses only */
    anonymous: McpName.optional(),
    /** Host names /mcp accepts besides IP literals and localhost (DNS-rebinding protection) */
    allowed_hosts: z.array(z.string().min(1).max(253)).default([]),
  })
  .superRefine((v, ctx) => {
    if (v.anonymous !== undefined && !(v.anonymous in v.clients))
      ctx.addIssue({ code: "custom", path: ["anonymous"], message: `no mcp.clients entry is named "${v.anonymous}"` });
    for (const [name, c] of Object.entries(v.clients))
      if (c.upstream !== undefined && !(c.upstream in v.servers))
        ctx.addIssue({
          code: "custom",
          path: ["clients", name, "upstream"],
          message: `no mcp.servers entry is named "${c.upstream}"`,
        });
  });
export type McpConfig = z.infer<typeof McpConfigSchema>;
export type McpServerConfig = z.infer<typeof McpServerSchema>;

const IPv4 = z.string().regex(/^(\d{1,3})(\.\d{1,3}){3}$/, { message: "expected an IPv4 address like 10.0.2.15" });

/** kernel.yaml `network:`: the appliance's network, brought up by init/network.ts (host mode ignores it) */
export const NetworkConfigSchema = z
  .strictObject({
    mode: z.enum(["dhcp", "static", "none"]).default("dhcp"),
    /** default: the first interface that is not loopback */
    interface: z.string().min(1).max(15).optional(),
    /** static: "10.0.2.15/24" (no prefix: /24) */
    address: z
      .string()
      .regex(/^(\d{1,3})(\.\d{1,3}){3}(\/\d{1,2})?$/, { message: "expected ADDRESS or ADDRESS/PREFIX" })
      .optional(),
    gateway: IPv4.optional(),
    dns: z.union([IPv4, z.array(IPv4)]).optional(),
    /** DHCP: give up after this many milliseconds (the kernel serves its console anyway) */
    dhcp_timeout_ms: z.number().int().min(100).max(120_000).default(10_000),
    /** SNTP servers (host names or IPv4), asked before those the DHCP lease offers (init/time.ts) */
    ntp: z
      .array(
        z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, { message: "expected a host name or an IPv4 address" }),
      )
      .max(8)
      .default([]),
  })
  .superRefine((v, ctx) => {
    if (v.mode === "static" && !v.address)
      ctx.addIssue({ code: "custom", path: ["address"], message: "static mode needs an address" });
  });

export type NetworkConfig = z.infer<typeof NetworkConfigSchema>;

const Count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** a memory quota: at most this many records and this many bytes of text (UTF-8) */
const Quota = (records: number, bytes: number) =>
  z.strictObject({ records: Count.default(records), bytes: Count.default(bytes) }).prefault({});

/** `openai:ENDPOINT/MODEL`: an inference.providers.openai_compatible endpoint and a model it serves */
export const EMBEDDINGS_MODEL = /^openai:[A-Za-z0-9][A-Za-z0-9._-]*\/.+$/;

/** kernel.yaml `memory:`: agent memory (kernel/memory/): quotas, archives, search */
export const MemoryConfigSchema = z.strictObject({
  quota: z
    .strictObject({
      /** an agent's own notes (its namespace agent:<id>) */
      agent: Quota(10_000, 16 * 1024 * 1024),
      /** each named namespace */
      namespace: Quota(100_000, 64 * 1024 * 1024),
      /** per named namespace: replaces the `namespace` quota (a field left out keeps the `namespace` value) */
      namespaces: z
        .record(z.string(), z.strictObject({ records: Count.optional(), bytes: Count.optional() }))
        .default({}),
    })
    .superRefine((q, ctx) => {
      for (const ns of Object.keys(q.namespaces)) {
        if (!NAMESPACE_NAME.test(ns))
          ctx.addIssue({
            code: "custom",
            path: ["namespaces", ns],
            message: `"${ns}" is not a namespace name (${NAMESPACE_RULE})`,
          });
      }
    })
    .prefault({})
    .transform((q) => ({
      agent: q.agent,
      namespace: q.namespace,
      namespaces: Object.fromEntries(
        Object.entries(q.namespaces).map(([ns, o]) => [
          ns,
          { records: o.records ?? q.namespace.records, bytes: o.bytes ?? q.namespace.bytes },
        ]),
      ) as Record<string, { records: number; bytes: number }>,
    })),
  /** named namespaces that may exist at once (a write creating one more is refused, -32010) */
  max_namespaces: z.number().int().min(0).max(100_000).default(256),
  /** per agent: bytes of archived turns; past it the oldest archives are pruned (audited) */
  archive_bytes: z
    .number()
    .int()
    .min(1)
    .max(Number.MAX_SAFE_INTEGER)
    .default(64 * 1024 * 1024),
  /** one memory_store text, in UTF-8 bytes */
  max_record_bytes: z
    .number()
    .int()
    .min(1)
    .max(1024 * 1024)
    .default(16 * 1024),
  /** the recency half of a search score halves every this long */
  recency_half_life: Duration.default("30d"),
  /** embeddings for hybrid search: "openai:ENDPOINT/MODEL"; absent: full-text search and recency only */
  embeddings: z.string().regex(EMBEDDINGS_MODEL, { message: 'expected "openai:ENDPOINT/MODEL"' }).optional(),
});

export type MemoryConfig = z.infer<typeof MemoryConfigSchema>;

const KernelConfigFields = z.strictObject({
  rpc: z
    .strictObject({
      max_line_bytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
      // per connection: replies queued for a peer that is not reading them; past it the
      // kernel stops reading that peer, past 4× it drops the peer (kernel/rpc/server.ts)
      max_pending_output_bytes: z
        .number()
        .int()
        .min(64 * 1024)
        .max(1024 * 1024 * 1024)
        .default(8 * 1024 * 1024),
      // per connection: request lines being handled at once; past it the peer is not read
      max_in_flight: z.number().int().min(1).max(100_000).default(256),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_agents: z.number().int().min(1).max(100_000).default(4096),
      max_spawn_depth: z.number().int().min(0).max(64).default(4),
      max_children: z.number().int().min(0).max(10_000).default(64),
      // per agent: messages, calls and notifications waiting in its inbox; a full inbox answers at once
      max_inbox: z.number().int().min(1).max(100_000).default(64),
    })
    .prefault({}),
  /** typed calls between agents (agent_call, agent.call): docs/manifests.md */
  ipc: z.strictObject({ call_timeout: Duration.default("120s") }).prefault({}),
  /** restart policies (manifest `restart:`): the backoff and the crash-loop cap */
  supervision: z
    .strictObject({
      backoff_base: Duration.default("1s"),
      backoff_max: Duration.default("60s"),
      crash_loop_failures: z.number().int().min(1).max(1000).default(5),
      crash_loop_window: Duration.default("60s"),
    })
    .prefault({}),
  /** manifest names spawned at boot once (as if marked autostart: true), resumed after a reboot */
  autostart: z.array(z.string().min(1)).default([]),
  approval: z.strictObject({ timeout: Duration.default("10m") }).prefault({}),
  tools: z
    .strictObject({
      file_read_max_bytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
      web_fetch_max_bytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
      web_fetch_timeout: Duration.default("20s"),
      web_fetch_max_redirects: z.number().int().min(0).max(20).default(5),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
      file: z.string().optional(),
    })
    .prefault({}),
  /** providers, routing, retries, scheduler limits: docs/inference.md */
  inference: InferenceConfigSchema.optional(),
  /** reversible effects: the pre-images a rewind puts back (docs/design.md, Reversibility) */
  journal: z
    .strictObject({
      /** bytes of pre-images kept; past it the oldest go (audited journal.prune) */
      max_bytes: z
        .number()
        .int()
        .min(0)
        .max(Number.MAX_SAFE_INTEGER)
        .default(256 * 1024 * 1024),
      /** a file larger than this is changed without its pre-image (a rewind says it cannot restore it) */
      max_pre_image_bytes: z
        .number()
        .int()
        .min(0)
        .max(1024 * 1024 * 1024)
        .default(16 * 1024 * 1024),
    })
    .prefault({}),
  /** the dashboard's HTTP listener (docs/dashboard.md): off unless listen is set (or --listen http:ADDR) */
  web: z
    .strictObject({
      /** HOST:PORT, e.g. "0.0.0.0:8080" */
      listen: z
        .string()
        .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { message: 'expected HOST:PORT, e.g. "0.0.0.0:8080"' })
        .optional(),
      /** the operator's and the viewer's token files (relative to the config directory); absent: created on the data disk */
      operator_token_file: z.string().min(1).optional(),
      viewer_token_file: z.string().min(1).optional(),
      /** a dashboard session lasts this long after its login */
      session_ttl: Duration.default("12h"),
    })
    .prefault({}),
  /** the appliance's network (init mode only; host mode ignores it): docs/operations.md */
  network: NetworkConfigSchema.optional(),
  /** agent memory: quotas, archives, search (kernel/memory/) */
  memory: MemoryConfigSchema.prefault({}),
  /** MCP both ways (docs/mcp.md): clients are principals; servers' tools are mcp.SERVER.TOOL */
  mcp: McpConfigSchema.prefault({}),
});

export const KernelConfigSchema = KernelConfigFields.superRefine((c, ctx) => {
  // memory.embeddings names an endpoint this file declares
  const model = c.memory.embeddings;
  if (model === undefined) return;
  const endpoint = model.slice("openai:".length, model.indexOf("/"));
  const known = (c.inference?.providers.openai_compatible ?? []).map((e) => e.name);
  if (!known.includes(endpoint)) {
    const names = known.length ? `the known endpoints: ${known.join(", ")}` : "none is declared";
    ctx.addIssue({
      code: "custom",
      path: ["memory", "embeddings"],
      message: `no inference.providers.openai_compatible endpoint is named "${endpoint}" (${names})`,
    });
  }
});

export type KernelConfig = z.infer<typeof KernelConfigSchema>;

/** what the kernel booted with: in system.info and the system.boot audit record */
export interface ConfigReport {
  /** "kernel.yaml": the file in the config directory is in effect; "defaults": there is none, or it was refused */
  source: "kernel.yaml" | "defaults";
  /** false: kernel.yaml was refused (init mode only; host mode does not start) */
  valid: boolean;
  /** why it was refused, with line and column */
  error?: string;
}

export interface LoadedConfig {
  config: KernelConfig;
  report: ConfigReport;
}

/**
 * kernel.yaml, read and parsed once for the whole boot. A bad file is an
 * error (host mode: the kernel does not start). With onInvalid "defaults"
 * (init mode: PID 1 must come up and answer on its console) the kernel boots
 * on the defaults instead, keeping the file's `network:` section when that
 * section is valid on its own (so the appliance stays reachable), and the
 * refusal is reported, never silent: ConfigReport.
 */
export function loadKernelConfig(
  configDir: string,
  opts: { onInvalid: "throw" | "defaults" } = { onInvalid: "throw" },
): LoadedConfig {
  const file = join(configDir, "kernel.yaml");
  if (!existsSync(file)) return { config: KernelConfigSchema.parse({}), report: { source: "defaults", valid: true } };
  let value: unknown;
  try {
    const parsed = parseKernelYaml(readFileSync(file, "utf8"), file);
    value = parsed.value;
    return { config: validate(parsed, file), report: { source: "kernel.yaml", valid: true } };
  } catch (e) {
    if (opts.onInvalid === "throw") throw e;
    const network = NetworkConfigSchema.safeParse((value as { network?: unknown } | null | undefined)?.network);
    const config = KernelConfigSchema.parse(network.success && value !== undefined ? { network: network.data } : {});
    return { config, report: { source: "defaults", valid: false, error: (e as Error)?.message ?? String(e) } };
  }
}

export function parseKernelConfig(text: string, source = "kernel.yaml"): KernelConfig {
  return validate(parseKernelYaml(text, source), source);
}

function parseKernelYaml(text: string, source: string): { yaml: PositionedYaml; value: unknown } {
  const parsed = PositionedYaml.parse(text);
  if ("error" in parsed) throw configError(source, parsed.error);
  return { yaml: parsed.yaml, value: parsed.value ?? {} };
}

function validate(parsed: { yaml: PositionedYaml; value: unknown }, source: string): KernelConfig {
  const result = KernelConfigSchema.safeParse(parsed.value);
  if (!result.success) throw configError(source, parsed.yaml.fromZod(result.error));
  return result.data;
}

function configError(source: string, e: PositionedError) {
  return new KernelError(ErrorCode.InvalidParams, describe(source, e), {
    source,
    path: e.path,
    line: e.line,
    column: e.column,
  });
}
