# shellcheck shell=bash
# Shared by the install scripts (source it): install Debian packages once per machine
# without leaving their system services running, since the tests start the servers by
# hand on free ports.
#
# The sourcing script defines `installed` (are the binaries there?) and `print_paths`,
# then calls:  apt_install_once NAME PACKAGE...   and, after it,  stop_services SERVICE...
# apt_install_once exits the script (printing the paths) when another run, waited for
# under a lock, already installed everything.

apt_install_once() {
    local name=$1
    shift
    local packages=("$@")

    # One install at a time (parallel test workers may all call the script).
    local cache="${LLM_TOLL_CACHE:-$HOME/.cache/llm-toll}"
    if command -v flock >/dev/null 2>&1; then
        mkdir -p "$cache"
        exec 9>"$cache/.$name-install.lock"
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
            echo "install-$name: must run as root (or with sudo available)" >&2
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-$name: apt-get not found; install ${packages[*]} by other means" >&2
        exit 1
    fi

    # Keep the packages' services from starting during the install.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        created_policy=1
    fi

    local start=$SECONDS status=0
    echo "install-$name: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    {
        "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 &&
            "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
                --no-install-recommends "${packages[@]}" >&2
    } || status=$?
    if [[ "$created_policy" == 1 ]]; then
        "${SUDO[@]}" rm -f "$policy"
    fi
    [[ "$status" == 0 ]] || exit "$status"
    echo "install-$name: installed in $((SECONDS - start))s" >&2
}

# Stop the named services if they run anyway, and keep them from starting at boot.
stop_services() {
    local svc
    for svc in "$@"; do
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
}
