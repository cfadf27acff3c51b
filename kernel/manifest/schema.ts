// The manifest grammar (docs/manifests.md documents every field). Strict:
// an unknown key is an error, never ignored, because a typo in a security
// field (say `aproval_required`) must not silently grant more.
import { z } from "zod";

/** "30s", "10m", "2h", "7d" → milliseconds */
export function parseDuration(text: string): number | null {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) return null;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms"];
  return n * unit;
}

const Duration = z.string().refine((s) => parseDuration(s) !== null, {
  message: 'expected a duration like "30s", "10m", "2h" or "7d"',
});

export const CapabilityEntrySchema = z.union([
  z.string().min(1),
  z.strictObject({
    capability: z.string().min(1),
    max_invocations: z.number().int().positive().optional(),
    expires_in: Duration.optional(),
  }),
]);

/** an agent's name: its manifest's file name under manifests/, and what spawn_child and message_send list */
export const MANIFEST_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const MANIFEST_NAME_RULE = "lower-case letters, digits, '-' and '_', at most 63 characters";

export const ManifestSchema = z.strictObject({
  name: z.string().regex(MANIFEST_NAME, MANIFEST_NAME_RULE),
  description: z.string().optional(),
  model: z.string().min(1),
  system_prompt: z.string().default(""),
  capabilities: z.array(CapabilityEntrySchema).default([]),
  approval_required: z.array(z.string().min(1)).default([]),
  spawn_child: z.array(z.string().min(1)).default([]),
  message_send: z.array(z.string().min(1)).default([]),
  budget: z
    .strictObject({
      max_tokens: z.number().int().positive(),
      period: z
        .string()
        .refine((s) => s === "lifetime" || parseDuration(s) !== null, {
          message: 'expected "lifetime" or a duration like "1h"',
        })
        .default("lifetime"),
    })
    .optional(),
  priority: z.number().int().min(0).max(100).default(50),
  weight: z.number().positive().max(1000).default(1),
  max_turns: z.number().int().min(1).max(1000).default(20),
  lifecycle: z.enum(["persistent", "ephemeral"]).default("persistent"),
});

export type Manifest = z.infer<typeof ManifestSchema>;
export type CapabilityEntry = z.infer<typeof CapabilityEntrySchema>;
