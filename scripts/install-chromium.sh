#!/usr/bin/env bash
# Install Chromium from the Debian package, once per machine, for the dashboard's browser
# tests (driven headless by Playwright through executable_path: no browser download).
#
#   chromium -> /usr/bin/chromium
#
# A second run only checks that the binary exists; runs at the same time wait for one
# install (flock on a file in ${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}).
#
# Prints one line on stdout: CHROMIUM=/absolute/path
set -euo pipefail

print_paths() {
    echo "CHROMIUM=$(command -v chromium)"
}

installed() {
    command -v chromium >/dev/null 2>&1
}

if installed; then
    print_paths
    exit 0
fi

# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_once chromium chromium

installed || { echo "install-chromium: chromium missing after install" >&2; exit 1; }
print_paths
