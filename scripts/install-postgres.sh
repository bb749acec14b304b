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

print_path() {
    echo "POSTGRES_BIN=$(bin_dir)"
}

if installed; then
    print_path
    exit 0
fi

# One install at a time (parallel test workers may all call this script).
CACHE="${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}"
if command -v flock >/dev/null 2>&1; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.postgres-install.lock"
    flock 9
    if installed; then # installed by whoever held the lock
        print_path
        exit 0
    fi
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-postgres: must run as root (or with sudo available)" >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-postgres: apt-get not found; install ${PACKAGES[*]} by other means" >&2
    exit 1
fi

# Keep the package's service from starting during the install.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [[ "$created_policy" == 1 ]]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    created_policy=1
fi

start=$SECONDS
echo "install-postgres: installing ${PACKAGES[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${PACKAGES[@]}" >&2

# Make sure no cluster is left running as a service, nor starts at the next boot.
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl stop postgresql >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
    # Works without a running systemd too (it only removes the unit links).
    "${SUDO[@]}" systemctl disable postgresql >/dev/null 2>&1 || true
fi
if command -v pg_lsclusters >/dev/null 2>&1; then
    # Columns: version, cluster name, port, status, ...
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _ status _; do
        if [[ "$status" == online* ]]; then
            "${SUDO[@]}" pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 || true
        fi
    done
fi
echo "install-postgres: installed in $((SECONDS - start))s" >&2

installed || { echo "install-postgres: PostgreSQL binaries missing after install" >&2; exit 1; }
print_path
