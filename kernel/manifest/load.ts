// Manifest loading: YAML → zod, with every error pointing at a line and
// column of the YAML so an operator editing /config/manifests on a FAT
// partition can find the mistake.
import { ErrorCode, KernelError } from "../errors.ts";
import { parseCapability } from "../caps/index.ts";
import { ManifestSchema, type Manifest } from "./schema.ts";
import { describe, PositionedYaml, type PositionedError } from "./yaml.ts";

export interface LoadOptions {
  /** tool names the kernel knows: approval_required must name only these */
  knownTools?: ReadonlySet<string>;
  /** where the text came from, for messages */
  source?: string;
}

export const MAX_MANIFEST_BYTES = 256 * 1024;

export function loadManifest(text: string, opts: LoadOptions = {}): Manifest {
  const source = opts.source ?? "manifest";
  if (text.length > MAX_MANIFEST_BYTES) {
    throw invalid(source, { message: `larger than ${MAX_MANIFEST_BYTES} bytes`, path: "", line: 1, column: 1 });
  }
  const parsed = PositionedYaml.parse(text);
  if ("error" in parsed) throw invalid(source, parsed.error);
  const { yaml, value } = parsed;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid(source, yaml.at([], "expected a mapping of manifest fields"));
  }
  const result = ManifestSchema.safeParse(value);
  if (!result.success) throw invalid(source, yaml.fromZod(result.error));
  const manifest = result.data;

  manifest.capabilities.forEach((entry, i) => {
    const text = typeof entry === "string" ? entry : entry.capability;
    try {
      parseCapability(text);
    } catch (e) {
      const path = typeof entry === "string" ? ["capabilities", i] : ["capabilities", i, "capability"];
      throw invalid(source, yaml.at(path, `invalid capability "${text}": ${(e as Error).message}`));
    }
  });
  const known = opts.knownTools;
  if (known) {
    manifest.approval_required.forEach((tool, i) => {
      if (!known.has(tool)) {
        throw invalid(source, yaml.at(["approval_required", i], `unknown tool "${tool}" (known: ${[...known].sort().join(", ")})`));
      }
    });
  }
  return manifest;
}

function invalid(source: string, e: PositionedError): KernelError {
  return new KernelError(ErrorCode.InvalidManifest, `invalid manifest: ${describe(source, e)}`, {
    source,
    path: e.path,
    line: e.line,
    column: e.column,
  });
}
