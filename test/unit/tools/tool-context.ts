// A minimal ToolContext over a real CapabilityTable, as the kernel builds one:
// authorize = kernel-private paths refused first (PrivateAreas.reason on the
// normalised path), then table.checkResource, throwing -32001 on a refusal.
import {
  CapabilityTable,
  normalizePath,
  PrivateAreas,
  type ResourceKind,
  type TokenSpec,
} from "../../../kernel/caps/index.ts";
import { capabilityDenied } from "../../../kernel/errors.ts";
import type { AgentServices } from "../../../kernel/services.ts";
import type { ToolContext, ToolLimits } from "../../../kernel/tools/tool.ts";
import { shown, type PathChange } from "../../../kernel/journal/index.ts";

export const defaultLimits: ToolLimits = {
  fileReadMaxBytes: 1024 * 1024,
  webFetchMaxBytes: 1024 * 1024,
  webFetchTimeoutMs: 5000,
  webFetchMaxRedirects: 5,
};

export interface TestCtx extends ToolContext {
  /** every journal.begin, with how it was settled */
  journaled: { changes: PathChange[]; settled: "done" | "failed" | null }[];
  table: CapabilityTable;
  denied: { kind: ResourceKind; resource: string; capability: string; reason: string }[];
  authorized: { kind: ResourceKind; resource: string }[];
}

export function makeCtx(
  specs: (string | TokenSpec)[],
  opts: {
    limits?: Partial<ToolLimits>;
    /** runs after a successful check, before the tool goes on (races) */
    afterAuthorize?: (kind: ResourceKind, resource: string) => void;
    signal?: AbortSignal;
    /** the kernel-private areas (default: a data and config directory that do not exist) */
    privateAreas?: PrivateAreas;
    /** runs in journal.begin, after the changes are recorded and before the tool makes them (races) */
    onBegin?: (changes: PathChange[]) => void;
  } = {},
): TestCtx {
  const table = new CapabilityTable();
  const agentId = "agent-1";
  table.grant(
    agentId,
    specs.map((s) => (typeof s === "string" ? { capability: s } : s)),
  );
  const denied: TestCtx["denied"] = [];
  const authorized: TestCtx["authorized"] = [];
  // the file and web tools never call services: any call fails the test
  const services = {} as AgentServices;
  const privateAreas =
    opts.privateAreas ?? new PrivateAreas({ dataDir: "/nonexistent", configDir: "/nonexistent-config" });
  const journaled: TestCtx["journaled"] = [];
  const ctx: TestCtx = {
    agentId,
    journaled,
    journal: {
      begin(changes) {
        const entry: TestCtx["journaled"][number] = { changes, settled: null };
        journaled.push(entry);
        opts.onBegin?.(changes);
        return {
          changes: changes.map((c) => ({ path: c.path, pre: shown(c.pre), post: shown(c.post) })),
          done: () => void (entry.settled ??= "done"),
          failed: () => void (entry.settled ??= "failed"),
        };
      },
    },
    privateAreas,
    table,
    denied,
    authorized,
    services,
    signal: opts.signal ?? new AbortController().signal,
    limits: { ...defaultLimits, ...opts.limits },
    record() {},
    authorize(kind, resource) {
      if (kind !== "web_fetch") {
        const n = normalizePath(resource);
        const why = n.ok ? privateAreas.reason(n.path) : null;
        if (n.ok && why !== null) {
          denied.push({ kind, resource, capability: `${kind}: ${n.path}`, reason: why });
          throw capabilityDenied("test", `${kind}: ${n.path}`, why);
        }
      }
      const r = table.checkResource(agentId, kind, resource);
      if (!r.ok) {
        denied.push({ kind, resource, capability: r.capability, reason: r.reason });
        throw capabilityDenied("test", r.capability, r.reason);
      }
      authorized.push({ kind, resource });
      opts.afterAuthorize?.(kind, resource);
      return r.token;
    },
  };
  return ctx;
}

/** the error a promise rejects with (fails the test when it resolves) */
export async function rejection(p: Promise<unknown>): Promise<any> {
  let value: unknown;
  try {
    value = await p;
  } catch (e) {
    return e;
  }
  throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
}
