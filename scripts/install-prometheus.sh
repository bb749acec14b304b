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

# One install at a time (parallel test workers may all call this script).
CACHE="${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}"
if command -v flock >/dev/null 2>&1; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.prometheus-install.lock"
    flock 9
    if installed; then # installed by whoever held the lock
        print_paths
        exit 0
    fi
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-prometheus: must run as root (or with sudo available)" >&2
        exit 1
    fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-prometheus: apt-get not found; install ${PACKAGES[*]} by other means" >&2
    exit 1
fi

# Keep the packages' services from starting during the install.
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
echo "install-prometheus: installing ${PACKAGES[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${PACKAGES[@]}" >&2

# Make sure nothing is left running as a service, nor starts at the next boot.
for svc in "${SERVICES[@]}"; do
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
        "${SUDO[@]}" systemctl stop "$svc" >/dev/null 2>&1 || true
    elif [[ -x "/etc/init.d/$svc" ]]; then
        "${SUDO[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
        # Works without a running systemd too (it only removes the unit links).
        "${SUDO[@]}" systemctl disable "$svc" >/dev/null 2>&1 || true
    fi
done
echo "install-prometheus: installed in $((SECONDS - start))s" >&2

installed || { echo "install-prometheus: binaries missing after install" >&2; exit 1; }
print_paths
