#!/usr/bin/env bash
# Installs the system packages Nexus builds against (hwloc for topology, udev for hwloc's
# device discovery, pkg-config to find them) and the ones its server tests and benchmark drive
# it with (redis-tools for redis-cli and redis-benchmark, redis-server as the peer, tmux for
# the `nexus top` test, nats-server for the cluster tests), and on request the nightly miri component or cargo-fuzz.
# Idempotent: does nothing when everything is already present. Needs no stdin.
#
#   tools/setup.sh          system packages only
#   tools/setup.sh --miri   also `rustup component add --toolchain nightly miri rust-src`
#                           (never fatal: prints a line and exits 0 if it cannot)
#   tools/setup.sh --fuzz   also the nightly toolchain and `cargo install cargo-fuzz`
#                           (never fatal, like --miri)
set -euo pipefail

want_miri=0
want_fuzz=0
for arg in "$@"; do
    case "$arg" in
        --miri) want_miri=1 ;;
        --fuzz) want_fuzz=1 ;;
        -h|--help)
            sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "setup: unknown argument '$arg' (use --miri, --fuzz or --help)" >&2
            exit 2
            ;;
    esac
done

packages=(libhwloc-dev libudev-dev pkg-config redis-tools redis-server tmux nats-server)

missing=()
if command -v dpkg >/dev/null 2>&1; then
    for pkg in "${packages[@]}"; do
        # `dpkg -s` also succeeds for removed-but-configured packages; require "install ok installed".
        if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
            missing+=("$pkg")
        fi
    done
else
    echo "setup: dpkg not found (not a Debian/Ubuntu system); install ${packages[*]} (or your distribution's equivalents) yourself"
fi

if ((${#missing[@]} > 0)); then
    sudo_cmd=()
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo_cmd=(sudo)
        else
            echo "setup: missing ${missing[*]}, and not root with no sudo: install them as root" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} apt-get update -q >/dev/null
    ${sudo_cmd[@]+"${sudo_cmd[@]}"} apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    echo "setup: installed ${missing[*]}"
elif command -v dpkg >/dev/null 2>&1; then
    echo "setup: system packages present"
fi

if ((want_miri)); then
    if ! command -v rustup >/dev/null 2>&1; then
        echo "setup: miri not installed: rustup not found (miri needs a rustup-managed nightly toolchain)"
    elif rustup component add --toolchain nightly miri rust-src >/dev/null 2>&1; then
        echo "setup: miri ready (nightly miri and rust-src components installed)"
    else
        echo "setup: miri not installed: 'rustup component add --toolchain nightly miri rust-src' failed (offline, or miri missing from this nightly); continuing without it"
    fi
fi
if ((want_fuzz)); then
    if cargo fuzz --version >/dev/null 2>&1; then
        echo "setup: cargo-fuzz present"
    elif ! command -v rustup >/dev/null 2>&1; then
        echo "setup: cargo-fuzz not installed: rustup not found (cargo fuzz needs a nightly toolchain)"
    elif rustup toolchain install nightly --profile minimal >/dev/null 2>&1 \
        && cargo install --locked cargo-fuzz >/dev/null 2>&1; then
        echo "setup: cargo-fuzz ready"
    else
        echo "setup: cargo-fuzz not installed: 'cargo install --locked cargo-fuzz' failed (offline?); continuing without it"
    fi
fi
exit 0
