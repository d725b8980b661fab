#!/usr/bin/env bash
# One entry point for a fresh clone: sets everything up (idempotent), then runs a command.
#   ./flyscan.sh demo   # simulated EXAFS fly scan into a real EPICS IOC
#   ./flyscan.sh test   # the whole test suite (what CI runs)
set -euo pipefail
# Paths given relative to where the command was typed (CARGO_TARGET_DIR, demo options) keep
# meaning that folder after the cd below.
export FLYSCAN_CALLER_DIR="$PWD"
if [ -n "${CARGO_TARGET_DIR:-}" ] && [[ "$CARGO_TARGET_DIR" != /* ]]; then
  export CARGO_TARGET_DIR="$PWD/$CARGO_TARGET_DIR"
fi
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/setup.sh
exec cargo xtask "$@"
