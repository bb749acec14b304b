#!/usr/bin/env bash
# Install the servers llm_toll's end-to-end tests run against, once per machine:
#   Jaeger v2            built from its Go module    (scripts/install-jaeger.sh)
#   Prometheus,
#   Alertmanager         Debian packages             (scripts/install-prometheus.sh)
# The OpenTelemetry Collector is built separately (collector/).
#
# Idempotent and fast when already done. Builds are cached outside the checkout
# under ${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}. Nothing is left running.
#
# Prints one line per binary on stdout, NAME=/absolute/path, for a harness to
# read: JAEGER, PROMETHEUS, PROMTOOL, ALERTMANAGER, AMTOOL.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Both at once: the apt install takes seconds while the first Jaeger build
# takes minutes.
jaeger_out="$(mktemp)"
trap 'rm -f "$jaeger_out"' EXIT
bash "$here/install-jaeger.sh" >"$jaeger_out" &
jaeger_pid=$!
prom_paths="$(bash "$here/install-prometheus.sh")" || {
    wait "$jaeger_pid" || true
    exit 1
}
wait "$jaeger_pid"

echo "JAEGER=$(cat "$jaeger_out")"
echo "$prom_paths"
