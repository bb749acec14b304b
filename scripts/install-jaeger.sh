#!/usr/bin/env bash
# Build Jaeger v2 (the all-in-one `jaeger` binary) from its Go module, once per machine.
#
# `go install github.com/jaegertracing/jaeger/cmd/jaeger@VERSION` is refused by
# the Go tool because Jaeger's go.mod has a `replace` directive, so this script
# downloads the module through the Go module proxy (`go mod download`) and
# builds ./cmd/jaeger inside it as the main module: same sources, same pinned
# dependency versions (go.sum) as the release.
#
# The binary is cached outside the checkout, keyed by version:
#   ${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}/jaeger-<version>/bin/jaeger
# A second run only checks that the binary exists and prints its path; runs
# at the same time wait for one build (flock).
#
# Environment:
#   LLM_TOLL_CACHE   cache root (default: $HOME/.cache/llm-toll)
#   JAEGER_VERSION   Go module version of github.com/jaegertracing/jaeger
#                    (default v1.76.0, the release tagged v1.76.0 / v2.13.0;
#                    the binary built from it is Jaeger v2)
#   JAEGER_V2_VERSION  version string stamped into the binary (default v2.13.0)
#   GO               go command (default: `go` on PATH, else /usr/local/go/bin/go)
#
# Prints the absolute path of the binary on stdout (and nothing else on stdout).
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"
JAEGER_V2_VERSION="${JAEGER_V2_VERSION:-v2.13.0}"
MODULE=github.com/jaegertracing/jaeger
CACHE="${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}"
BIN_DIR="$CACHE/jaeger-$JAEGER_VERSION/bin"
BIN="$BIN_DIR/jaeger"

if [[ -x "$BIN" ]]; then
    echo "$BIN"
    exit 0
fi

GO="${GO:-}"
if [[ -z "$GO" ]]; then
    if command -v go >/dev/null 2>&1; then
        GO="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
        GO=/usr/local/go/bin/go
    else
        echo "install-jaeger: no Go toolchain found (set GO=/path/to/go)" >&2
        exit 1
    fi
fi

mkdir -p "$BIN_DIR"

# One build at a time per cache (parallel test workers may all ask for Jaeger).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$BIN_DIR/.build.lock"
    flock 9
    if [[ -x "$BIN" ]]; then # built by whoever held the lock
        echo "$BIN"
        exit 0
    fi
fi

echo "install-jaeger: building jaeger $JAEGER_V2_VERSION ($MODULE@$JAEGER_VERSION), first time only, takes minutes" >&2
start=$SECONDS

# Download the module (verified against the checksum database) and find its
# extracted, read-only source directory in the module cache.
src_dir="$(cd / && "$GO" mod download -json "$MODULE@$JAEGER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src_dir" || ! -f "$src_dir/go.mod" ]]; then
    echo "install-jaeger: could not download $MODULE@$JAEGER_VERSION" >&2
    exit 1
fi

# Build to a temporary file and move it into place, so an interrupted build
# never leaves a half-written binary that looks installed.
tmp_bin="$(mktemp "$BIN_DIR/.jaeger.XXXXXX")"
trap 'rm -f "$tmp_bin"' EXIT
ldflags="-X $MODULE/internal/version.latestVersion=$JAEGER_V2_VERSION"
ldflags+=" -X $MODULE/internal/version.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
(
    cd "$src_dir"
    # GOTOOLCHAIN=local: build with the installed Go, never download another.
    GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" \
        "$GO" build -trimpath -ldflags "$ldflags" -o "$tmp_bin" ./cmd/jaeger
) >&2
chmod 755 "$tmp_bin"
mv -f "$tmp_bin" "$BIN"
echo "install-jaeger: built in $((SECONDS - start))s" >&2
echo "$BIN"
