/**
 * CI-sized run of the schema-aware params fuzzer (tests/fuzz_params.ts): a few
 * thousand seeded cases over every method, against one in-process gateway.
 * Seed: GW_FUZZ_SEED; size: GW_FUZZ_PARAMS_CASES (default 4000).
 */
import assert from "node:assert/strict";
import { methods } from "../methods/mod.ts";
import { runParamsFuzz } from "./fuzz_params.ts";

const SEED = (Number(Deno.env.get("GW_FUZZ_SEED") ?? "0x5eed1234") >>> 0) || 1;
const CASES = Number(Deno.env.get("GW_FUZZ_PARAMS_CASES") ?? 4000);

Deno.test(`params fuzz: ${CASES} schema-aware cases over every method (seed 0x${SEED.toString(16)})`, async () => {
  const out = await runParamsFuzz({ cases: CASES, seed: SEED });
  const summary = JSON.stringify({ ...out, problems: out.problems.slice(0, 10) }, null, 2);
  assert.deepEqual(out.crashes, [], `unhandled errors in the process:\n${summary}`);
  assert.deepEqual(out.problems, [], summary);
  assert.equal(out.sent, CASES, summary);
  assert.equal(out.unanswered, 0, summary);
  assert.equal(out.answeredOk + out.answeredError, CASES, summary);
  // The run really exercised both kinds of case and every method.
  assert.ok(out.schemaRejected > CASES / 2, summary);
  assert.ok(out.schemaValid > 0, summary);
  assert.equal(out.methodsCovered, methods.length, summary);
  assert.ok(out.stateChecks >= Math.ceil(CASES / 200), summary);
});
