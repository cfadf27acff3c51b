export {
  ManifestSchema,
  CapabilityEntrySchema,
  MANIFEST_NAME,
  parseDuration,
  type Manifest,
  type CapabilityEntry,
} from "./schema.ts";
export { loadManifest, ManifestCache, manifestNames, MAX_MANIFEST_BYTES, type LoadOptions } from "./load.ts";
export { hasOneSource, manifestSource, manifestSourceFields, ONE_SOURCE_MESSAGE } from "./source.ts";
