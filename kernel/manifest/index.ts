export { ManifestSchema, CapabilityEntrySchema, parseDuration, type Manifest, type CapabilityEntry } from "./schema.ts";
export { loadManifest, MAX_MANIFEST_BYTES, type LoadOptions } from "./load.ts";
