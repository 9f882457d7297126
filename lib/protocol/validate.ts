/**
 * zod helpers shared by the server's schemas: readable issue messages that
 * name the field, as `params.limit: expected number, got string`.
 *
 * @module
 */
import type { z } from "zod";

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function pathOf(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Turn the first zod issue into one readable sentence naming the field. */
export function formatIssue(root: string, issue: z.core.$ZodIssue, input: unknown): string {
  switch (issue.code) {
    case "invalid_type": {
      const got = valueAt(input, issue.path);
      if (got === undefined) return `${pathOf(root, issue.path)}: required ${issue.expected}`;
      return `${pathOf(root, issue.path)}: expected ${issue.expected}, got ${describe(got)}`;
    }
    case "unrecognized_keys":
      return `${pathOf(root, issue.path)}: unexpected field${issue.keys.length > 1 ? "s" : ""} ${
        issue.keys.map((k) => `'${k}'`).join(", ")
      }`;
    case "invalid_value":
      return `${pathOf(root, issue.path)}: expected one of ${
        issue.values.map((v) => JSON.stringify(v)).join(", ")
      }`;
    default:
      return `${pathOf(root, issue.path)}: ${issue.message}`;
  }
}

/** Issues as `{path, message}` pairs, for config validation reports. */
export function listIssues(
  error: z.ZodError,
  input: unknown,
): { path: string; message: string }[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join("."),
    message: formatIssue("", issue, input).replace(/^: /, "").replace(/^\.[^:]*: /, ""),
  }));
}
