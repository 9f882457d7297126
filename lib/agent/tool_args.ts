/**
 * Tool-call arguments the model sent that are not a JSON object, marked by the
 * providers and answered by the runtime with an error result (so the model can
 * correct itself). Its own module so the runtime does not load a provider.
 *
 * @module
 */
import type { ToolCall } from "./types.ts";

/**
 * The key under which a tool call's `arguments` carry arguments the model sent
 * that were not a JSON object: `{ [INVALID_TOOL_ARGUMENTS]: { raw, error } }`.
 * The runtime should not run the tool but answer the call with an error tool
 * result (see {@link invalidToolArguments}) so the model can correct itself.
 */
export const INVALID_TOOL_ARGUMENTS = "__gwInvalidToolArguments";

/** What {@link invalidToolArguments} reports about unparseable arguments. */
export interface InvalidToolArguments {
  /** The arguments text exactly as the model sent it. */
  raw: string;
  /** Why it was rejected, e.g. `Unexpected end of JSON input`. */
  error: string;
}

/**
 * The problem with a tool call's arguments when the model sent text that is not
 * a JSON object, else `undefined`.
 *
 * @example
 * ```ts
 * const bad = invalidToolArguments(call);
 * if (bad) return { isError: true, text: `Invalid JSON arguments (${bad.error}): ${bad.raw}` };
 * ```
 */
export function invalidToolArguments(call: ToolCall): InvalidToolArguments | undefined {
  const v = call.arguments[INVALID_TOOL_ARGUMENTS];
  if (!v || typeof v !== "object") return undefined;
  const { raw, error } = v as Record<string, unknown>;
  return typeof raw === "string" && typeof error === "string" ? { raw, error } : undefined;
}

/**
 * Parse streamed tool arguments: empty → `{}`; a JSON object → itself; a JSON
 * string holding an object (double-encoded, some local servers) → that object;
 * anything else → the {@link INVALID_TOOL_ARGUMENTS} marker.
 */
export function _parseToolArguments(raw: string): Record<string, unknown> {
  if (raw.trim() === "") return {};
  let error = "expected a JSON object";
  try {
    let v: unknown = JSON.parse(raw);
    if (typeof v === "string") v = JSON.parse(v);
    if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    error = `expected a JSON object, got ${Array.isArray(v) ? "an array" : typeof v}`;
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  return { [INVALID_TOOL_ARGUMENTS]: { raw, error } };
}
