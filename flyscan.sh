#!/usr/bin/env bash
# One entry point for a fresh clone: sets everything up (idempotent), then runs a command.
#   ./flyscan.sh demo   # simulated EXAFS fly scan into a real EPICS IOC
#   ./flyscan.sh test   # the whole test suite (what CI runs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash scripts/setup.sh
exec cargo xtask "$@"
