// YAML + zod with positions: every error names the field path and the line
// and column in the text. Shared by manifests and kernel.yaml.
import { isMap, isScalar, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";

export interface PositionedError {
  message: string;
  path: string;
  line: number;
  column: number;
}

export type YamlPath = (string | number)[];

export class PositionedYaml {
  private constructor(
    readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  static parse(text: string): { yaml: PositionedYaml; value: unknown } | { error: PositionedError } {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const err = doc.errors[0];
    if (err) {
      const pos = lines.linePos(err.pos[0]);
      return { error: { message: `YAML: ${err.message.split("\n")[0]}`, path: "", line: pos.line, column: pos.col } };
    }
    return { yaml: new PositionedYaml(doc, lines), value: doc.toJS({ maxAliasCount: 50 }) };
  }

  /** position of the deepest node on the path that exists (a missing field points at its parent) */
  at(path: YamlPath, message: string): PositionedError {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return this.error(path, message, node.range[0]);
    }
    return { message, path: formatPath(path), line: 1, column: 1 };
  }

  /** an unknown key: point at the key itself */
  atKey(path: YamlPath, key: string, message: string): PositionedError {
    const parent = path.length ? this.doc.getIn(path, true) : this.doc.contents;
    if (isMap(parent)) {
      for (const pair of parent.items) {
        if (isScalar(pair.key) && pair.key.value === key && pair.key.range) return this.error([...path, key], message, pair.key.range[0]);
      }
    }
    return this.at([...path, key], message);
  }

  fromZod(error: z.ZodError): PositionedError {
    const issue = error.issues[0]!;
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") return this.atKey(path, issue.keys[0]!, "unknown field");
    return this.at(path, issue.message);
  }

  private error(path: YamlPath, message: string, offset: number): PositionedError {
    const pos = this.lines.linePos(offset);
    return { message, path: formatPath(path), line: pos.line, column: pos.col };
  }
}

export function formatPath(path: YamlPath): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

export function describe(source: string, e: PositionedError): string {
  return `${source}: ${e.path ? e.path + ": " : ""}${e.message} (line ${e.line}, column ${e.column})`;
}
