// How a zod failure reads to a person, said once: RPC params, tool input and
// YAML files (manifests, kernel.yaml) all name the field the same way and
// pick the same issue first. Positions in a YAML text are manifest/yaml.ts's.
import type { z } from "zod";

export type FieldPath = (string | number)[];

type Issue = z.core.$ZodIssue;

/** the issues in the order a person should see them: unknown fields first (usually a typo), then the rest */
export function orderedIssues(err: z.ZodError): Issue[] {
  return [...err.issues].sort(
    (a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"),
  );
}

/** where the issue is (symbols, which no input can hold, are dropped) */
export function issuePath(issue: Issue): FieldPath {
  return issue.path.filter((p): p is string | number => typeof p !== "symbol");
}

/** what is wrong there, without the path: "unknown field", "required", or zod's own words */
export function issueMessage(issue: Issue): string {
  if (issue.code === "unrecognized_keys") return "unknown field";
  if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) return "required";
  return issue.message;
}

/** a.b[0].c */
export function formatPath(path: FieldPath): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/**
 * The first two issues as `path: message; path: message`. With a prefix
 * (e.g. "input") every path starts with it; without one, an issue at the
 * root is named "(params)". Unknown fields are listed together: `a.x, y: unknown field`.
 */
export function describeZodIssues(err: z.ZodError, prefix?: string): string {
  return orderedIssues(err)
    .slice(0, 2)
    .map((issue) => {
      const path = formatPath(prefix === undefined ? issuePath(issue) : [prefix, ...issuePath(issue)]);
      if (issue.code === "unrecognized_keys")
        return `${path ? path + "." : ""}${issue.keys.join(", ")}: ${issueMessage(issue)}`;
      return `${path || "(params)"}: ${issueMessage(issue)}`;
    })
    .join("; ");
}
