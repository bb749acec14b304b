#!/usr/bin/env bash
# Install Prometheus and Alertmanager from the Debian packages, once per machine.
#
#   prometheus               -> /usr/bin/prometheus, /usr/bin/promtool
#   prometheus-alertmanager  -> /usr/bin/prometheus-alertmanager, /usr/bin/amtool
#
# The packages ship system services. Tests start both servers by hand on free
# ports, so this script keeps the services from starting during the install
# (a temporary policy-rc.d when none exists) and, if they run anyway, stops and
# disables them. A second run only checks that the binaries exist; runs at the
# same time wait for one install (flock on a file in the cache directory,
# ${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}).
#
# Prints one line per binary on stdout: NAME=/absolute/path
# (PROMETHEUS, PROMTOOL, ALERTMANAGER, AMTOOL).
set -euo pipefail

PACKAGES=(prometheus prometheus-alertmanager)
SERVICES=(prometheus prometheus-alertmanager)

print_paths() {
    echo "PROMETHEUS=$(command -v prometheus)"
    echo "PROMTOOL=$(command -v promtool)"
    echo "ALERTMANAGER=$(command -v prometheus-alertmanager)"
    echo "AMTOOL=$(command -v amtool)"
}

installed() {
    command -v prometheus >/dev/null 2>&1 &&
        command -v promtool >/dev/null 2>&1 &&
        command -v prometheus-alertmanager >/dev/null 2>&1 &&
        command -v amtool >/dev/null 2>&1
}

if installed; then
    print_paths
    exit 0
fi

# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_once prometheus "${PACKAGES[@]}"
stop_services "${SERVICES[@]}"

installed || { echo "install-prometheus: binaries missing after install" >&2; exit 1; }
print_paths
