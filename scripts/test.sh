#!/usr/bin/env bash
# The test command: set up a fresh Debian 12 machine, then run every check.
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries the end-to-end tests run)"
cargo build --workspace --bins --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== benches compile"
cargo bench --workspace --no-run --locked
echo "== the demo (README's main job), on the debug build"
DEMO_PROFILE=debug bash scripts/demo.sh
