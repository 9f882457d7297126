/**
 * Where gw keeps its state, from flag, env or the default `~/.gw`.
 *
 * @module
 */

/** The state dir: `--state-dir`, else `GW_STATE_DIR`, else `~/.gw`. */
export function resolveStateDir(flag?: string): string {
  const dir = flag ?? Deno.env.get("GW_STATE_DIR");
  if (dir) return dir.startsWith("~/") ? `${home()}${dir.slice(1)}` : dir;
  return `${home()}/.gw`;
}

function home(): string {
  return Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
}

/** `path` with the home directory shown as `~`. */
export function tildify(path: string): string {
  const h = Deno.env.get("HOME");
  return h && path.startsWith(h + "/") ? `~${path.slice(h.length)}` : path;
}
