// YAML + zod with positions: every error names the field path and the line
// and column in the text. Shared by manifests and kernel.yaml.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { formatPath, issueMessage, issuePath, orderedIssues } from "../zod.ts";

export interface PositionedError {
  message: string;
  path: string;
  line: number;
  column: number;
}

export type YamlPath = (string | number)[];

/** at most this many aliases (`*name`) in one document */
export const MAX_ALIASES = 100;
/** aliases may add at most this many nodes to the document once expanded (an alias bomb adds billions) */
export const MAX_ALIAS_EXPANSION = 10_000;

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
    const yaml = new PositionedYaml(doc, lines);
    const aliasError = yaml.checkAliases();
    if (aliasError) return { error: aliasError };
    try {
      // checkAliases bounds every expansion already (in one pass, where the
      // yaml package's own count rescans the document per alias)
      return { yaml, value: doc.toJS({ maxAliasCount: -1 }) };
    } catch (e) {
      return { error: { message: `YAML: ${(e as Error).message}`, path: "", line: 1, column: 1 } };
    }
  }

  /**
   * Every alias must name an anchor before it that does not contain it, there
   * may be at most MAX_ALIASES of them, and together they may add at most
   * MAX_ALIAS_EXPANSION nodes: a "billion laughs" document is refused at the
   * alias that crosses the line, before anything is expanded.
   */
  private checkAliases(): PositionedError | null {
    const anchors = new Map<string, unknown>();
    const sizes = new Map<unknown, number>();
    const open = new Set<unknown>();
    const path: YamlPath = [];
    let aliases = 0;
    let added = 0;
    const fail = (node: { range?: [number, number, number] | null }, message: string): never => {
      throw new Refused(this.error([...path], `YAML: ${message}`, node.range?.[0] ?? 0));
    };
    // expanded size in nodes, in document order (the order aliases resolve in)
    const walk = (node: unknown): number => {
      if (node === null || node === undefined) return 1;
      if (isAlias(node)) {
        if (++aliases > MAX_ALIASES) fail(node, `more than ${MAX_ALIASES} aliases`);
        const target = anchors.get(node.source);
        if (target === undefined) fail(node, `alias *${node.source} has no anchor &${node.source} before it`);
        if (open.has(target)) fail(node, `alias *${node.source} refers to a node that contains it`);
        const size = sizes.get(target)!;
        added += size;
        if (added > MAX_ALIAS_EXPANSION)
          fail(node, `aliases expand to more than ${MAX_ALIAS_EXPANSION} nodes (an alias bomb?) at *${node.source}`);
        return size;
      }
      const anchor = (node as { anchor?: string }).anchor;
      if (anchor) anchors.set(anchor, node);
      open.add(node);
      let size = 1;
      if (isMap(node)) {
        for (const pair of node.items) {
          path.push(isScalar(pair.key) ? String(pair.key.value) : "?");
          size += walk(pair.key) + walk(pair.value);
          path.pop();
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => {
          path.push(i);
          size += walk(item);
          path.pop();
        });
      }
      open.delete(node);
      sizes.set(node, size);
      return size;
    };
    try {
      walk(this.doc.contents);
      return null;
    } catch (e) {
      if (e instanceof Refused) return e.error;
      if (e instanceof RangeError) return { message: "YAML: nested too deeply", path: "", line: 1, column: 1 };
      throw e;
    }
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
        if (isScalar(pair.key) && pair.key.value === key && pair.key.range)
          return this.error([...path, key], message, pair.key.range[0]);
      }
    }
    return this.at([...path, key], message);
  }

  /** the issue a person should see first (kernel/zod.ts says which, and in what words), where it is */
  fromZod(error: z.ZodError): PositionedError {
    const issue = orderedIssues(error)[0]!;
    const path = issuePath(issue);
    if (issue.code === "unrecognized_keys") return this.atKey(path, issue.keys[0]!, issueMessage(issue));
    return this.at(path, issueMessage(issue));
  }

  private error(path: YamlPath, message: string, offset: number): PositionedError {
    const pos = this.lines.linePos(offset);
    return { message, path: formatPath(path), line: pos.line, column: pos.col };
  }
}

class Refused {
  constructor(readonly error: PositionedError) {}
}

export function describe(source: string, e: PositionedError): string {
  return `${source}: ${e.path ? e.path + ": " : ""}${e.message} (line ${e.line}, column ${e.column})`;
}
