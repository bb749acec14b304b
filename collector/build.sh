#!/usr/bin/env bash
# Build llm_toll's OpenTelemetry Collector from collector/builder-config.yaml with the
# OpenTelemetry Collector Builder (ocb), and cache it outside the checkout:
#
#   ${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}/otelcol-<manifest hash>/otelcol-llm-toll
#
# The binary's path is the last (and only) line printed on stdout; progress goes to
# stderr. A second run finds the cached binary and returns at once, without Go or the
# network. Needs only Go (and the Go module proxy) on a fresh machine.
#
# Safe to interrupt and to run concurrently: each build happens in a temporary directory
# of the cache and is renamed into place when complete, under a lock.
#
# Environment:
#   LLM_TOLL_CACHE   cache root (default: $HOME/.cache/llm-toll)
#   OCB_VERSION      ocb version (default: the core release the manifest names)
#   GO               go command (default: `go` on PATH, else /usr/local/go/bin/go)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder-config.yaml"
name="otelcol-llm-toll" # dist.name in the manifest

cache_root="${LLM_TOLL_CACHE:-${HOME:?HOME or LLM_TOLL_CACHE must be set}/.cache/llm-toll}"
mkdir -p "$cache_root"
cache_root="$(cd "$cache_root" && pwd)"
# The cache key: the manifest without its comment and blank lines (editing a comment
# does not rebuild).
if command -v sha256sum >/dev/null 2>&1; then sha=(sha256sum); else sha=(shasum -a 256); fi
hash="$(grep -vE '^[[:space:]]*(#|$)' "$manifest" | "${sha[@]}" | cut -c1-16)"
final_dir="$cache_root/otelcol-$hash"
binary="$final_dir/$name"

# Fast path: nothing but a file test.
if [[ -x "$binary" ]]; then
  printf '%s\n' "$binary"
  exit 0
fi

log() { printf 'collector/build.sh: %s\n' "$*" >&2; }

# One build at a time per cache (parallel test workers may all ask for the binary).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache_root/.otelcol-build.lock"
  flock 9
  if [[ -x "$binary" ]]; then # built by whoever held the lock
    printf '%s\n' "$binary"
    exit 0
  fi
  # Holding the lock, no other build runs: temporary directories left by a killed
  # build (SIGKILL leaves no chance to clean up) can go.
  rm -rf "$cache_root"/.otelcol-build.*/
fi

go_cmd="${GO:-}"
if [[ -z "$go_cmd" ]]; then
  if command -v go >/dev/null 2>&1; then
    go_cmd="go"
  elif [[ -x /usr/local/go/bin/go ]]; then
    go_cmd="/usr/local/go/bin/go"
  else
    log "Go is needed to build the collector (https://go.dev/doc/install)"
    exit 1
  fi
fi

# The ocb release matching the core modules of the manifest.
ocb_version="${OCB_VERSION:-$(grep -m1 -oE 'go\.opentelemetry\.io/collector/[a-z/]+ v0\.[0-9]+\.[0-9]+' "$manifest" | awk '{print $2}')}"
if [[ -z "$ocb_version" ]]; then
  log "cannot tell the core release from $manifest; set OCB_VERSION"
  exit 1
fi

tmp="$(mktemp -d "$cache_root/.otelcol-build.XXXXXX")"
child=""
cleanup() {
  if [[ -n "$child" ]]; then kill "$child" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command in the background and waits for it, so that INT/TERM are handled at
# once (bash defers traps while a foreground command runs); the lock's descriptor is not
# handed down, so that a stray child cannot hold the lock.
run() {
  local rc=0
  "$@" 9>&- &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# 1. ocb itself, cached per version beside the collectors.
ocb_dir="$cache_root/ocb-$ocb_version"
ocb="$ocb_dir/builder"
if [[ ! -x "$ocb" ]]; then
  log "installing ocb $ocb_version"
  GOBIN="$tmp/ocb" run "$go_cmd" install "go.opentelemetry.io/collector/cmd/builder@$ocb_version"
  if [[ ! -x "$ocb" ]]; then
    rm -rf "$ocb_dir"
    mv "$tmp/ocb" "$ocb_dir"
  fi
fi

# 2. The collector: ocb generates the sources into ./_build (the manifest's output_path,
#    relative to its working directory), fetches the modules and compiles.
log "building $name (manifest $hash, ocb $ocb_version); the first build takes minutes"
start=$SECONDS
cd "$tmp"
run "$ocb" --config "$manifest" >"$tmp/ocb.log" 2>&1 || {
  tail -n 40 "$tmp/ocb.log" >&2
  log "build failed"
  exit 1
}
cd "$cache_root"
"$tmp/_build/$name" --version >/dev/null # a sanity check that it runs

# 3. Into place, in one rename.
mkdir -p "$tmp/otelcol-$hash"
mv "$tmp/_build/$name" "$tmp/otelcol-$hash/$name"
cp "$manifest" "$tmp/otelcol-$hash/builder-config.yaml"
cp "$tmp/_build/go.mod" "$tmp/otelcol-$hash/go.mod" # the resolved module versions
if [[ ! -x "$binary" ]]; then # else a concurrent build (no flock here) finished first
  rm -rf "$final_dir"          # a leftover without a binary
  mv "$tmp/otelcol-$hash" "$final_dir"
fi
log "built in $((SECONDS - start))s"

printf '%s\n' "$binary"
