"""The bitstream build works: one small configuration goes through yosys, nextpnr and icepack
from PyPI, and its report has the numbers BENCHMARKS.md quotes. (The full-size builds are
`cargo xtask bitstream`; they take minutes.)"""

import os
import tempfile

from flyscan_gateware import build


def test_a_small_configuration_builds_a_bitstream():
    out = os.environ.get("FLYSCAN_GATEWARE_BUILD_DIR") or tempfile.mkdtemp(prefix="flyscan-gw-")
    core = dict(n_channels=1, counter_bits=8, fifo_depth=16, snapshot_depth=16, glitch_filter=2)
    report = build.build("icebreaker", core, os.path.join(out, "icebreaker-1ch"))
    assert os.path.getsize(report["bitstream"]) > 100_000, "an iCE40UP5K bitstream is ~100 KiB"
    assert 0 < report["luts"] < report["luts_available"]
    assert report["ffs"] > 64 + 32, "at least the timestamp and the sequence counter"
    assert report["bram"] >= 2, "FIFO and snapshot RAM in block RAM"
    assert report["fmax_mhz"] and report["fmax_mhz"] > 10


def test_a_board_without_pins_for_the_channels_is_refused():
    out = tempfile.mkdtemp(prefix="flyscan-gw-")
    core = dict(n_channels=9, counter_bits=8, fifo_depth=16, snapshot_depth=16, glitch_filter=0)
    try:
        build.build("icebreaker", core, out, synth_only=True)
    except ValueError as e:
        assert "8 channels" in str(e)
    else:
        raise AssertionError("9 channels on an 8-channel board were accepted")
