#!/usr/bin/env bash
# Installs everything vswitch needs to build, test and run on Debian 12.
# Idempotent: safe to run on every CI run and before every demo.
set -euo pipefail

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: must run as root (installs packages, mounts bpffs)" >&2
        exit 1
    fi
}

PKGS=(
    build-essential clang llvm m4 libelf-dev zlib1g-dev pkg-config libbpf-dev
    iproute2 iputils-ping ethtool tcpdump netcat-openbsd iperf3 python3
    containernetworking-plugins
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    need_root
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "setup: no Rust toolchain (cargo) found; install one with rustup (Rust >= 1.85)" >&2
        exit 1
    fi
fi

# BPF filesystem for pinned maps and libxdp's dispatcher.
if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
    mount -t bpf bpf /sys/fs/bpf 2>/dev/null || echo "setup: note: could not mount bpffs on /sys/fs/bpf"
fi
echo "setup: ok ($(cargo --version))"
