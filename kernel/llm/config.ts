// The `inference:` section of kernel.yaml. Every field is optional.
import { z } from "zod";

const Positive = z.number().int().positive();
const Url = z.string().regex(/^https?:\/\/[^\s]+$/, { message: "expected an http:// or https:// URL" });

export interface AnthropicProviderConfig {
  /** file holding the API key, relative to the config directory or absolute */
  api_key_file?: string | undefined;
  /** default: $ANTHROPIC_BASE_URL, then https://api.anthropic.com */
  base_url?: string | undefined;
  /** default: inference.request_timeout_ms */
  timeout_ms?: number | undefined;
  /** default: inference.retry.max_retries */
  max_retries?: number | undefined;
  rpm?: number | undefined;
  tpm?: number | undefined;
}

export interface OpenAICompatibleEndpoint {
  name: string;
  /** base URL up to and including /v1, e.g. http://10.0.2.2:8000/v1 */
  base_url: string;
  api_key_file?: string | undefined;
  /** manifest models served by this endpoint without the `openai:NAME/` prefix */
  models: string[];
  timeout_ms?: number | undefined;
  max_retries?: number | undefined;
  rpm?: number | undefined;
  tpm?: number | undefined;
}

export interface RetryConfig {
  max_retries: number;
  base_delay_ms: number;
  max_delay_ms: number;
  /** no retry starts after this long since the first attempt of a call */
  max_elapsed_ms: number;
}

export interface InferenceConfig {
  max_concurrency: number;
  default_max_tokens: number;
  min_output_tokens: number;
  /** no response headers, or no stream event, within this long: the attempt fails (and is retried) */
  request_timeout_ms: number;
  /** a waiting call gains one priority level per aging_ms */
  aging_ms: number;
  /** tool results longer than this are cut before they go back to the model */
  max_tool_result_bytes: number;
  retry: RetryConfig;
  providers: {
    anthropic: AnthropicProviderConfig;
    openai_compatible: OpenAICompatibleEndpoint[];
  };
}

const AnthropicSchema = z.strictObject({
  api_key_file: z.string().min(1).optional(),
  base_url: Url.optional(),
  timeout_ms: Positive.optional(),
  max_retries: z.number().int().min(0).max(20).optional(),
  rpm: Positive.optional(),
  tpm: Positive.optional(),
});

const EndpointSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, { message: "endpoint names are letters, digits, '.', '_' and '-'" }),
  base_url: Url,
  api_key_file: z.string().min(1).optional(),
  models: z.array(z.string().min(1)).default([]),
  timeout_ms: Positive.optional(),
  max_retries: z.number().int().min(0).max(20).optional(),
  rpm: Positive.optional(),
  tpm: Positive.optional(),
});

export const InferenceConfigSchema: z.ZodType<InferenceConfig> = z
  .strictObject({
    max_concurrency: z.number().int().min(1).max(1024).default(4),
    default_max_tokens: z.number().int().min(1).max(1_000_000).default(4096),
    min_output_tokens: z.number().int().min(1).default(16),
    request_timeout_ms: Positive.default(120_000),
    aging_ms: z.number().int().min(0).default(30_000),
    max_tool_result_bytes: Positive.default(100_000),
    retry: z
      .strictObject({
        max_retries: z.number().int().min(0).max(20).default(4),
        base_delay_ms: z.number().int().min(0).default(500),
        max_delay_ms: z.number().int().min(0).default(30_000),
        max_elapsed_ms: Positive.default(120_000),
      })
      .prefault({}),
    providers: z
      .strictObject({
        anthropic: AnthropicSchema.prefault({}),
        openai_compatible: z
          .array(EndpointSchema)
          .default([])
          .refine((eps) => new Set(eps.map((e) => e.name)).size === eps.length, {
            message: "endpoint names must be unique",
          }),
      })
      .prefault({}),
  })
  .prefault({});
