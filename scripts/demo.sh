#!/usr/bin/env bash
# The main job: set up a fresh Debian 12 machine and run the vswitch demo.
# Today the demo drives the real pipeline over in-memory ports; the
# network-namespace cluster demo replaces it when vswitchd lands.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh
cargo run --release --locked -q -p vswitch --example memdemo
