/**
 * The tools the model may call. Later features register theirs (exec on a
 * node, cron, send); two safe built-ins come with the core: the time, and
 * arithmetic.
 *
 * @module
 */
import type { ToolSpec } from "./types.ts";

/** What a tool gets besides its input. */
export interface ToolContext {
  sessionKey: string;
  agentId: string;
  runId: string;
  signal: AbortSignal;
}

/** A tool's answer; `isError` tells the model the call failed. */
export interface ToolOutput {
  text: string;
  isError?: boolean;
}

/** A tool. */
export interface Tool extends ToolSpec {
  /** Do the work. Throwing is the same as `{isError: true, text: message}`. */
  run(input: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput> | ToolOutput;
}

/** Most characters of a tool's output kept (the rest is cut, and the model told). */
export const MAX_TOOL_OUTPUT_CHARS = 64 * 1024;

/** Tools by name. */
export class ToolRegistry {
  readonly #tools = new Map<string, Tool>();

  /** Add a tool; a name may be registered once. */
  register(tool: Tool): void {
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(tool.name)) throw new Error(`bad tool name: ${tool.name}`);
    if (this.#tools.has(tool.name)) throw new Error(`tool already registered: ${tool.name}`);
    this.#tools.set(tool.name, tool);
  }

  /** The specs the model is told about. */
  specs(): ToolSpec[] {
    return [...this.#tools.values()].map(({ name, description, inputSchema }) => ({
      name,
      description,
      inputSchema,
    }));
  }

  /** Run tool `name`; unknown tools and failures become error outputs for the model. */
  async run(name: string, input: Record<string, unknown>, ctx: ToolContext): Promise<ToolOutput> {
    const tool = this.#tools.get(name);
    if (!tool) return { text: `unknown tool: ${name}`, isError: true };
    let out: ToolOutput;
    try {
      out = await tool.run(input, ctx);
    } catch (e) {
      out = { text: e instanceof Error ? e.message : String(e), isError: true };
    }
    if (out.text.length > MAX_TOOL_OUTPUT_CHARS) {
      out = {
        ...out,
        text: `${
          out.text.slice(0, MAX_TOOL_OUTPUT_CHARS)
        }\n[output cut at ${MAX_TOOL_OUTPUT_CHARS} characters]`,
      };
    }
    return out;
  }
}

/** `current_time`: the date and time, in the gateway's or a given IANA time zone. */
export const currentTimeTool: Tool = {
  name: "current_time",
  description:
    "The current date and time. Give `timeZone` (IANA, e.g. Asia/Shanghai) for local time there.",
  inputSchema: {
    type: "object",
    properties: { timeZone: { type: "string", description: "IANA time zone" } },
    additionalProperties: false,
  },
  run(input) {
    const now = new Date();
    const tz = typeof input.timeZone === "string" ? input.timeZone : undefined;
    let local: string;
    try {
      local = now.toLocaleString("en-GB", {
        timeZone: tz,
        dateStyle: "full",
        timeStyle: "long",
      });
    } catch {
      return { text: `unknown time zone: ${tz}`, isError: true };
    }
    return { text: JSON.stringify({ iso: now.toISOString(), local, timeZone: tz ?? "local" }) };
  },
};

/** `calculate`: exact arithmetic the model should not do in its head. */
export const calculateTool: Tool = {
  name: "calculate",
  description:
    "Evaluate an arithmetic expression: numbers, + - * / % ^, parentheses, and sqrt, abs, round, floor, ceil, min, max, pi, e.",
  inputSchema: {
    type: "object",
    properties: { expression: { type: "string", description: "e.g. (1.5 + 2) * 3 ^ 2" } },
    required: ["expression"],
    additionalProperties: false,
  },
  run(input) {
    const expr = input.expression;
    if (typeof expr !== "string" || expr.length > 1000) {
      return { text: "expression must be a string of at most 1000 characters", isError: true };
    }
    return { text: String(evaluate(expr)) };
  },
};

const FUNCS: Record<string, (...a: number[]) => number> = {
  sqrt: Math.sqrt,
  abs: Math.abs,
  round: Math.round,
  floor: Math.floor,
  ceil: Math.ceil,
  min: Math.min,
  max: Math.max,
};
const CONSTS: Record<string, number> = { pi: Math.PI, e: Math.E };

/** Evaluate arithmetic with a recursive-descent parser (no `eval`). Throws on bad input. */
export function evaluate(src: string): number {
  const tokens = src.match(/\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+|[a-z]+|[-+*/%^(),]|\S/gi) ?? [];
  let i = 0;
  const peek = () => tokens[i];
  const take = (t?: string) => {
    const v = tokens[i++];
    if (t !== undefined && v !== t) throw new Error(`expected '${t}' but found '${v ?? "end"}'`);
    return v;
  };
  const expr = (): number => {
    let v = term();
    while (peek() === "+" || peek() === "-") v = take() === "+" ? v + term() : v - term();
    return v;
  };
  const term = (): number => {
    let v = unary();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = take();
      const r = unary();
      v = op === "*" ? v * r : op === "/" ? v / r : v % r;
    }
    return v;
  };
  const unary = (): number => {
    if (peek() === "-") return take(), -unary();
    if (peek() === "+") return take(), unary();
    return power();
  };
  const power = (): number => {
    const b = atom();
    if (peek() === "^") return take(), b ** unary();
    return b;
  };
  const atom = (): number => {
    const t = take();
    if (t === undefined) throw new Error("unexpected end of expression");
    if (t === "(") {
      const v = expr();
      take(")");
      return v;
    }
    if (/^[\d.]/.test(t)) return Number(t);
    const name = t.toLowerCase();
    if (name in CONSTS) return CONSTS[name]!;
    const f = FUNCS[name];
    if (!f) throw new Error(`unknown name '${t}'`);
    take("(");
    const args = [expr()];
    while (peek() === ",") take(), args.push(expr());
    take(")");
    return f(...args);
  };
  const v = expr();
  if (i < tokens.length) throw new Error(`unexpected '${tokens[i]}'`);
  if (!Number.isFinite(v)) throw new Error("the result is not a finite number");
  return v;
}

/** A registry with the built-in tools. */
export function defaultTools(): ToolRegistry {
  const r = new ToolRegistry();
  r.register(currentTimeTool);
  r.register(calculateTool);
  return r;
}
