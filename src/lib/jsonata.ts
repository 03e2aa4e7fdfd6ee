import jsonata from "jsonata";
import { err, ok, type Result } from "./result";

/**
 * JSONata expressions of target documents (docs/transforms.md): checked on save, evaluated with
 * bounds. `jsonata` is an interpreter (no `eval`, no `new Function`), so it runs in workerd.
 *
 * Bounds of one evaluation. In workerd the clock does not move while code runs (only across I/O),
 * so the time bound only helps where it does (Node); the step, depth and sequence bounds hold
 * everywhere: every evaluated node is a step, and a runaway expression ends with an error.
 */
export const EXPRESSION_LIMITS = {
  /** Nodes evaluated per evaluation at most. */
  steps: 100_000,
  /** Nesting of evaluation (recursion) at most. */
  depth: 250,
  /** Items of one sequence at most. */
  sequence: 100_000,
  /** Wall time, ms (where the clock moves during evaluation). */
  timeoutMs: 1_000,
  /** Characters of an expression at most. */
  chars: 10_000,
} as const;

/** What JSONata throws: a code (S0xxx syntax, D/T evaluation, U runaway), the character position and the token. */
interface JsonataFailure {
  code?: string;
  position?: number;
  token?: string;
  message?: string;
}

/** An expression's error as one line, with its position: `Syntax error: ")" (S0201 at position 7)`. */
export function describeExpressionError(e: unknown): string {
  const f = (typeof e === "object" && e !== null ? e : { message: String(e) }) as JsonataFailure;
  const where = [f.code, f.position !== undefined ? `at position ${f.position}` : undefined].filter(Boolean).join(" ");
  return `${f.message ?? "evaluation failed"}${where ? ` (${where})` : ""}`.slice(0, 500);
}

/** The syntax error of an expression, with its position, or null when it compiles. Pure, synchronous. */
export function expressionError(text: string): string | null {
  try {
    jsonata(text);
    return null;
  } catch (e) {
    return describeExpressionError(e);
  }
}

/** Functions an expression may call beyond JSONata's own (e.g. `$secret`). */
export type ExpressionFunctions = Record<string, { fn: (...args: never[]) => unknown; signature: string }>;

/** Raised by a bounded evaluation that ran past EXPRESSION_LIMITS.steps. */
const STEP_LIMIT = { code: "U1001", message: `The expression evaluated more than ${EXPRESSION_LIMITS.steps} steps; it was stopped` };

/**
 * Evaluates an expression over `input` within EXPRESSION_LIMITS. Never throws: a syntax error,
 * an evaluation error or a runaway expression is an error message with its position.
 */
export async function evaluateExpression(text: string, input: unknown, functions: ExpressionFunctions = {}): Promise<Result<unknown, string>> {
  try {
    // Compiled per evaluation: the step counter is this evaluation's own (attempts run concurrently).
    const expr = jsonata(text, { stack: EXPRESSION_LIMITS.depth, timeout: EXPRESSION_LIMITS.timeoutMs, sequence: EXPRESSION_LIMITS.sequence });
    let steps = 0;
    expr.assign(Symbol.for("jsonata.__evaluate_entry") as unknown as string, () => {
      if (++steps > EXPRESSION_LIMITS.steps) throw { ...STEP_LIMIT };
    });
    for (const [name, f] of Object.entries(functions)) expr.registerFunction(name, f.fn as (...args: unknown[]) => unknown, f.signature);
    return ok(plain(await expr.evaluate(input)));
  } catch (e) {
    return err(describeExpressionError(e));
  }
}

/** JSONata's results carry sequence markers on arrays; a plain copy serializes as JSON does. */
function plain(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value) ?? "null");
}
