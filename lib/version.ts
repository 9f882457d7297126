/**
 * gw's version; `tests/version_test.ts` keeps it equal to deno.json's.
 *
 * @module
 */

/** gw's version. */
export const VERSION = "0.1.0";
