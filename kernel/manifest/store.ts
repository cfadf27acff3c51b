// Where manifests live, by name: two layers. <config>/manifests is the
// operator's read-mostly partition (AAOS-CFG, edited on a workstation);
// <data>/state/manifests is the kernel's own layer, written by manifest.put
// and removed by manifest.delete (kernel-private: under <data>, outside
// <data>/files, so no tool reaches it). A name in the data layer hides the
// same name in the config layer. Every reader of manifests by name (spawn by
// name, manifest.list, autostart, the known agent names, resume) goes
// through one ManifestLayers, so they all see the same layering.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { syncDir, writeFileAtomic } from "../sys/files.ts";
import { MANIFEST_NAME } from "./schema.ts";

export type ManifestLayer = "config" | "data";

export interface LayeredManifest {
  name: string;
  /** the file's name in its directory */
  file: string;
  source: ManifestLayer;
  /** a data-disk manifest hiding a config one of the same name */
  overrides: boolean;
  /** absolute path */
  path: string;
  /** for messages and audit records: manifests/NAME.yaml or state/manifests/NAME.yaml */
  label: string;
}

/** the NAME.yaml / NAME.yml files of a directory whose NAME is a manifest name, by name (.yaml first) */
function filesOf(dir: string): Map<string, string> {
  let files: string[];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return new Map();
  }
  const out = new Map<string, string>();
  for (const file of files) {
    const m = /^(.*)\.(ya?ml)$/.exec(file);
    if (!m || !MANIFEST_NAME.test(m[1]!)) continue;
    if (!out.has(m[1]!) || m[2] === "yaml") out.set(m[1]!, file);
  }
  return out;
}

export class ManifestLayers {
  readonly configDir: string;
  readonly dataDir: string;

  constructor(configRoot: string, dataRoot: string) {
    this.configDir = join(configRoot, "manifests");
    this.dataDir = join(dataRoot, "state", "manifests");
  }

  /** every manifest by name, the data layer over the config layer, sorted by name */
  list(): LayeredManifest[] {
    const config = filesOf(this.configDir);
    const data = filesOf(this.dataDir);
    const names = [...new Set([...config.keys(), ...data.keys()])].sort();
    return names.map((name) => {
      const d = data.get(name);
      if (d !== undefined)
        return {
          name,
          file: d,
          source: "data",
          overrides: config.has(name),
          path: join(this.dataDir, d),
          label: `state/manifests/${d}`,
        };
      const c = config.get(name)!;
      return {
        name,
        file: c,
        source: "config",
        overrides: false,
        path: join(this.configDir, c),
        label: `manifests/${c}`,
      };
    });
  }

  /** the agent names either layer defines */
  names(): Set<string> {
    return new Set([...filesOf(this.configDir).keys(), ...filesOf(this.dataDir).keys()]);
  }

  /** the manifest of that name as spawn sees it, or null */
  find(name: string): LayeredManifest | null {
    if (!MANIFEST_NAME.test(name)) return null;
    return this.list().find((m) => m.name === name) ?? null;
  }

  read(m: LayeredManifest): string {
    return readFileSync(m.path, "utf8");
  }

  /** is there a config-layer manifest of that name? */
  inConfig(name: string): boolean {
    return filesOf(this.configDir).has(name);
  }

  /** the data layer's file of that name, if any */
  dataFile(name: string): string | null {
    const f = filesOf(this.dataDir).get(name);
    return f === undefined ? null : join(this.dataDir, f);
  }

  /** writes <data>/state/manifests/NAME.yaml atomically (a NAME.yml there is removed: one file per name) */
  put(name: string, text: string): string {
    const path = join(this.dataDir, `${name}.yaml`);
    writeFileAtomic(path, text);
    const yml = join(this.dataDir, `${name}.yml`);
    if (existsSync(yml)) {
      rmSync(yml, { force: true });
      syncDir(this.dataDir);
    }
    return path;
  }

  /** removes the data layer's file of that name; false when it has none */
  remove(name: string): boolean {
    const removed = [".yaml", ".yml"].filter((ext) => existsSync(join(this.dataDir, name + ext)));
    for (const ext of removed) rmSync(join(this.dataDir, name + ext), { force: true });
    if (removed.length) syncDir(this.dataDir);
    return removed.length > 0;
  }
}
