"""Writes the design as Verilog (module ``flyscan_core``, ports as ``core.FlyscanCore`` plus
``clk`` and ``rst``), for RTL simulators and other toolchains:
``python -m flyscan_gateware.verilog --n-channels 8 -o flyscan_core.v``."""

import argparse

from amaranth.back import verilog

from .core import FlyscanCore


def add_design_args(p):
    """The design parameters as command-line options (shared by the build commands)."""
    p.add_argument("--n-channels", type=int, default=8)
    p.add_argument("--counter-bits", type=int, default=32)
    p.add_argument("--fifo-depth", type=int, default=4096)
    p.add_argument("--snapshot-depth", type=int, default=4096)
    p.add_argument("--clock-hz", type=int, default=100_000_000)
    p.add_argument("--glitch-filter", type=int, default=0)


def design_from_args(args):
    return FlyscanCore(
        n_channels=args.n_channels,
        counter_bits=args.counter_bits,
        fifo_depth=args.fifo_depth,
        snapshot_depth=args.snapshot_depth,
        clock_hz=args.clock_hz,
        glitch_filter=args.glitch_filter,
    )


def convert(core):
    return verilog.convert(core, name="flyscan_core")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    add_design_args(p)
    p.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    text = convert(design_from_args(args))
    with open(args.output, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
