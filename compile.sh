#!/usr/bin/env bash
# compile.sh — build gw as single binaries with `deno compile`.
# Run `./compile.sh -h` for usage.
set -euo pipefail

cd "$(dirname "$0")"

ALL_TARGETS=(
  x86_64-unknown-linux-gnu
  aarch64-unknown-linux-gnu
  x86_64-apple-darwin
  aarch64-apple-darwin
  x86_64-pc-windows-msvc
)
ENTRY=main.ts
TIMEOUT="${GW_COMPILE_TIMEOUT:-900}" # seconds per target (denort download + compile)

usage() {
  cat <<EOF
Usage: ./compile.sh [--target TARGET]... [--output-dir DIR] [-h]

Builds gw from ${ENTRY} with \`deno compile -P=gw\` (the same permission set as
\`deno task start\`, defined once in deno.json), embedding ui/ when it exists.
Writes DIR/gw-<target> (gw-<target>.exe for Windows) and DIR/SHA256SUMS
(checksums of the binaries built by that run).

Options:
  --target TARGET    target to build; repeatable (default: all of them):
                       ${ALL_TARGETS[*]}
  --output-dir DIR   where to write the binaries (default: dist)
  -h, --help         show this help

Environment:
  DENORT_BIN           path to a local denort (Deno's base runtime, same Deno
                       version as \`deno\`) for the host; only the host target
                       is built then, with no download.
  GW_COMPILE_TIMEOUT   seconds allowed per target (default 900).

deno compile downloads denort for each target from dl.deno.land unless
DENORT_BIN is set. Exit codes: 0 ok, 1 build failed, 2 usage error,
3 denort could not be downloaded.
EOF
}

die_usage() {
  printf 'compile.sh: %s\n' "$1" >&2
  printf "Try './compile.sh -h'.\n" >&2
  exit 2
}

is_known_target() {
  local t
  for t in "${ALL_TARGETS[@]}"; do [[ $t == "$1" ]] && return 0; done
  return 1
}

targets=()
outdir=dist
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --target)
      (($# >= 2)) || die_usage "--target needs a value"
      targets+=("$2"); shift 2 ;;
    --target=*) targets+=("${1#*=}"); shift ;;
    --output-dir)
      (($# >= 2)) || die_usage "--output-dir needs a value"
      outdir="$2"; shift 2 ;;
    --output-dir=*) outdir="${1#*=}"; shift ;;
    *) die_usage "unknown argument: $1" ;;
  esac
done
[[ -n $outdir ]] || die_usage "--output-dir must not be empty"
for t in ${targets[@]+"${targets[@]}"}; do
  is_known_target "$t" || die_usage "unknown target '$t' (known: ${ALL_TARGETS[*]})"
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")

command -v deno >/dev/null 2>&1 || {
  echo "compile.sh: 'deno' not found on PATH (install it: npm install -g deno)" >&2
  exit 1
}
[[ -f $ENTRY ]] || { echo "compile.sh: entry point $ENTRY not found in $PWD" >&2; exit 1; }

# Versions for messages: gw from deno.json, Deno from the CLI itself.
gw_version="$(deno eval --no-config \
  'console.log(JSON.parse(Deno.readTextFileSync("deno.json")).version ?? "")' 2>/dev/null ||
  sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' deno.json | head -n1)"
gw_version="${gw_version:-unknown}"
deno_version="$(deno --version | head -n1 | awk '{print $2}')"
host_target="$(deno eval --no-config 'console.log(Deno.build.target)' 2>/dev/null || echo unknown)"

if [[ -n ${DENORT_BIN:-} ]]; then
  if [[ ! -f $DENORT_BIN ]]; then
    echo "compile.sh: DENORT_BIN=$DENORT_BIN does not exist" >&2
    exit 1
  fi
  is_known_target "$host_target" || {
    echo "compile.sh: DENORT_BIN is set but host target '$host_target' is not one gw builds" >&2
    exit 1
  }
  skipped=()
  for t in "${targets[@]}"; do [[ $t == "$host_target" ]] || skipped+=("$t"); done
  echo "compile.sh: DENORT_BIN is set ($DENORT_BIN): a local denort serves only the host," >&2
  echo "            so building just the host target $host_target." >&2
  ((${#skipped[@]})) && echo "            skipped: ${skipped[*]}" >&2
  targets=("$host_target")
fi

# The run flags (permission set, V8 flags) are defined once, in deno.json's
# "gw" task (`deno run <flags> main.ts`); the binary gets exactly those.
read -r -a run_flags < <(deno eval --quiet '
  const t = JSON.parse(Deno.readTextFileSync("deno.json")).tasks.gw;
  const m = /^deno run (.+) main\.ts$/.exec(t);
  if (!m) { console.error("deno.json tasks.gw must read: deno run <flags> main.ts"); Deno.exit(1); }
  console.log(m[1]);')
if ((${#run_flags[@]} == 0)); then
  echo "compile.sh: could not read the run flags from deno.json tasks.gw" >&2
  exit 1
fi
include=()
if [[ -d ui ]]; then include=(--include ui/); fi

created_outdir=""
[[ -d $outdir ]] || created_outdir=1
mkdir -p "$outdir"
work="$(mktemp -d)"
cleanup() {
  rm -rf "$work"
  # leave no empty output dir behind when nothing was built
  if [[ -n $created_outdir ]]; then rmdir "$outdir" 2>/dev/null || true; fi
}
trap cleanup EXIT

denort_failure() { # denort_failure TARGET DETAIL
  cat >&2 <<EOF

==> gw ${gw_version}: deno compile failed for target $1: could not download Deno's base runtime (denort).
    $2
    deno compile downloads denort for each target from dl.deno.land:
      https://dl.deno.land/release/v${deno_version}/denort-$1.zip
    and this machine could not fetch it (no network access to dl.deno.land?).
    To fix, either:
      - run ./compile.sh where dl.deno.land is reachable (it builds every target), or
      - set DENORT_BIN to a denort binary of the same Deno version (${deno_version}) for the
        host target (${host_target}); only that target is built then. Get it from
        https://dl.deno.land/release/v${deno_version}/denort-${host_target}.zip
        (also attached to https://github.com/denoland/deno/releases/tag/v${deno_version}),
        unzip it, then: DENORT_BIN=/path/to/denort ./compile.sh
EOF
  exit 3
}

built=()
echo "compile.sh: gw ${gw_version}, deno ${deno_version}, targets: ${targets[*]} -> ${outdir}/" >&2
for t in "${targets[@]}"; do
  out="$outdir/gw-$t"
  [[ $t == *windows* ]] && out="$out.exe"
  log="$work/$t.log"
  echo "compile.sh: building $out" >&2
  set +e
  timeout --kill-after=10 "$TIMEOUT" \
    deno compile "${run_flags[@]}" ${include[@]+"${include[@]}"} --target "$t" --output "$out" "$ENTRY" 2>&1 |
    tee "$log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  if ((rc == 124 || rc == 137)); then
    if grep -q 'dl\.deno\.land' "$log"; then
      denort_failure "$t" "The download of denort did not finish within ${TIMEOUT}s (GW_COMPILE_TIMEOUT)."
    fi
    echo "compile.sh: deno compile for $t timed out after ${TIMEOUT}s (GW_COMPILE_TIMEOUT)" >&2
    exit 1
  fi
  if ((rc != 0)); then
    plain="$(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$log")"
    if grep -qE 'dl\.deno\.land|denort|Setting up base binary' <<<"$plain"; then
      cause=""
      for pat in 'error sending request' 'dns error|Connect|timed out|status' '^error:'; do
        cause="$(grep -m1 -E "$pat" <<<"$plain" | sed -E 's/^ *([0-9]+: )?//' || true)"
        [[ -n $cause ]] && break
      done
      denort_failure "$t" "Cause: ${cause:-see the deno output above}"
    fi
    echo "compile.sh: deno compile failed for $t (exit $rc); see the output above" >&2
    exit 1
  fi
  built+=("$(basename "$out")")
done

if command -v sha256sum >/dev/null 2>&1; then
  (cd "$outdir" && sha256sum "${built[@]}") >"$outdir/SHA256SUMS"
else
  (cd "$outdir" && shasum -a 256 "${built[@]}") >"$outdir/SHA256SUMS"
fi
echo "compile.sh: built ${#built[@]} binary(ies) in $outdir/:" >&2
cat "$outdir/SHA256SUMS"
