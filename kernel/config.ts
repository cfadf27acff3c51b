// kernel.yaml: the kernel's own settings, read from the config directory
// (host mode: --config DIR; the image: the AAOS-CFG partition at /config).
// Every field is optional; an absent file means all defaults. A bad file is
// an error with line and column, like a manifest.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { parseDuration } from "./manifest/index.ts";
import { describe, PositionedYaml, type PositionedError } from "./manifest/yaml.ts";
import { KernelError, ErrorCode } from "./errors.ts";
import { InferenceConfigSchema } from "./llm/config.ts";
import { NetworkConfigSchema } from "../init/network.ts";

const Duration = z.string().refine((s) => parseDuration(s) !== null, { message: 'expected a duration like "30s" or "10m"' });

export const KernelConfigSchema = z.strictObject({
  rpc: z
    .strictObject({
      max_line_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
      // per connection: replies queued for a peer that is not reading them; past it the
      // kernel stops reading that peer, past 4× it drops the peer (kernel/rpc/server.ts)
      max_pending_output_bytes: z.number().int().min(64 * 1024).max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
      // per connection: request lines being handled at once; past it the peer is not read
      max_in_flight: z.number().int().min(1).max(100_000).default(256),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_agents: z.number().int().min(1).max(100_000).default(4096),
      max_spawn_depth: z.number().int().min(0).max(64).default(4),
      max_children: z.number().int().min(0).max(10_000).default(64),
    })
    .prefault({}),
  approval: z.strictObject({ timeout: Duration.default("10m") }).prefault({}),
  tools: z
    .strictObject({
      file_read_max_bytes: z.number().int().positive().default(1024 * 1024),
      web_fetch_max_bytes: z.number().int().positive().default(1024 * 1024),
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
  /** the appliance's network (init mode only; host mode ignores it): docs/operations.md */
  network: NetworkConfigSchema.optional(),
});

export type KernelConfig = z.infer<typeof KernelConfigSchema>;

export function loadKernelConfig(configDir: string): KernelConfig {
  const file = join(configDir, "kernel.yaml");
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  return parseKernelConfig(text, file);
}

export function parseKernelConfig(text: string, source = "kernel.yaml"): KernelConfig {
  const parsed = PositionedYaml.parse(text);
  if ("error" in parsed) throw configError(source, parsed.error);
  const result = KernelConfigSchema.safeParse(parsed.value ?? {});
  if (!result.success) throw configError(source, parsed.yaml.fromZod(result.error));
  return result.data;
}

function configError(source: string, e: PositionedError) {
  return new KernelError(ErrorCode.InvalidParams, describe(source, e), { source, path: e.path, line: e.line, column: e.column });
}
