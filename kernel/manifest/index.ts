export {
  ManifestSchema,
  CapabilityEntrySchema,
  ServedMethodSchema,
  MANIFEST_NAME,
  METHOD_NAME,
  parseDuration,
  servedMethods,
  compileServes,
  ServesError,
  type Manifest,
  type CapabilityEntry,
  type ServedMethod,
  type ServedMethodEntry,
} from "./schema.ts";
export { loadManifest, ManifestCache, manifestNames, MAX_MANIFEST_BYTES, type LoadOptions } from "./load.ts";
export { hasOneSource, manifestSource, manifestSourceFields, ONE_SOURCE_MESSAGE } from "./source.ts";
