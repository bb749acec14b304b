#!/usr/bin/env bash
# Install the PostgreSQL server from Debian's packages, once per machine, for the tests
# of the PostgreSQL store (tests/stores/), which start their own server on a free port.
#
#   postgresql  -> /usr/lib/postgresql/<major>/bin/{initdb,postgres,pg_ctl,pg_isready,...}
#
# The package creates and starts a cluster as a system service. This script keeps the
# service from starting during the install (a temporary policy-rc.d when none exists) and,
# if any cluster runs anyway, stops it and keeps it from starting at boot. A second run
# only checks that the binaries exist; runs at the same time wait for one install (flock
# on a file in ${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}).
#
# Prints one line on stdout: POSTGRES_BIN=/usr/lib/postgresql/<major>/bin
# (the newest installed major version that has initdb, postgres and pg_isready).
set -euo pipefail

PACKAGES=(postgresql)

bin_dir() {
    local dir
    # The glob sorts 10 before 9: pick the highest major version numerically.
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/postgres" && -x "$dir/pg_isready" ]]; then
            echo "$dir"
        fi
    done | sort -t/ -k5,5n | tail -n 1
}

installed() {
    [[ -n "$(bin_dir)" ]]
}

print_paths() {
    echo "POSTGRES_BIN=$(bin_dir)"
}

if installed; then
    print_paths
    exit 0
fi

# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_once postgres "${PACKAGES[@]}"
stop_services postgresql
if command -v pg_lsclusters >/dev/null 2>&1; then
    # The package's own cluster, if it started anyway. Columns: version, name, port, status.
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _ status _; do
        if [[ "$status" == online* ]]; then
            "${SUDO[@]}" pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
        fi
    done
fi

installed || { echo "install-postgres: PostgreSQL binaries missing after install" >&2; exit 1; }
print_paths
