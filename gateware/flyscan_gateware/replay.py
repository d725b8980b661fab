"""Replays a test vector file (written by the Rust reference model, see
``fpga-contract/src/vectors.rs``) against the gateware in Amaranth's simulator, cycle by cycle,
and returns every MISO byte that differs from the expected one.

Stimulus steps name the cycle at which the design must see a signal; the pins are driven
``input_latency`` cycles earlier. An SPI step drives CS_N, SCLK and MOSI with the file's
timing and samples MISO as the host does, in the cycle it raises SCLK.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from . import contract as c
from .core import FlyscanCore


@dataclass
class Transaction:
    at: int
    mosi: bytes
    miso: bytes
    got: list = field(default_factory=list)


@dataclass
class VectorFile:
    header: dict
    steps: list
    end: int


def load(path):
    """Parses a vector file; raises ValueError on a malformed one."""
    header, steps, end = None, [], None
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: {e}") from e
            if obj.get("header"):
                header = obj
            elif obj.get("end"):
                end = obj["at"]
            else:
                steps.append(obj)
    if header is None or end is None:
        raise ValueError(f"{path}: no header or no end line")
    return VectorFile(header, steps, end)


def design_for(header, **overrides):
    """The gateware with the geometry a vector file was made for."""
    args = dict(
        n_channels=header["n_channels"],
        counter_bits=header["counter_bits"],
        fifo_depth=header["fifo_depth"],
        snapshot_depth=header["snapshot_depth"],
        clock_hz=header["clock_hz"],
        time_origin=header["time_origin"],
    )
    args.update(overrides)
    return FlyscanCore(**args)


def schedule(vf, input_latency):
    """Pin changes per cycle (relative to the time origin) and MISO sample points."""
    h = vf.header
    origin = h["time_origin"]
    half, setup, hold = h["half_period"], h["cs_setup"], h["cs_hold"]
    actions = defaultdict(list)  # cycle -> [(pin, bit or None, value)]
    samples = {}  # cycle -> (transaction, bit index)
    transactions = []
    for s in vf.steps:
        at = s["at"] - origin
        if "ab" in s:
            t = at - input_latency
            actions[t] += [("enc_a", None, s["ab"] & 1), ("enc_b", None, s["ab"] >> 1 & 1)]
        elif "pulse" in s:
            for ch in range(32):
                if s["pulse"] >> ch & 1:
                    actions[at - c.INPUT_LATENCY].append(("det", ch, 1))
                    actions[at - c.INPUT_LATENCY + 1].append(("det", ch, 0))
        elif "gate" in s:
            actions[at - c.INPUT_LATENCY].append(("gate", None, s["gate"]))
        else:
            tr = Transaction(at, bytes.fromhex(s["mosi"]), bytes.fromhex(s["miso"]))
            transactions.append(tr)
            actions[at].append(("cs_n", None, 0))
            nbits = 8 * len(tr.mosi)
            for i in range(nbits):
                low = at + setup + 2 * half * i
                bit = tr.mosi[i // 8] >> (7 - i % 8) & 1
                actions[low].append(("mosi", None, bit))
                if i:
                    actions[low].append(("sclk", None, 0))
                actions[low + half].append(("sclk", None, 1))
                samples[low + half] = (tr, i)
            done = at + setup + 2 * half * nbits
            actions[done].append(("sclk", None, 0))
            actions[done + hold].append(("cs_n", None, 1))
    if actions and min(actions) < 0:
        raise ValueError("a step lies before the time origin's first cycle")
    return actions, samples, transactions


def replay(vf, dut=None):
    """Runs the file against ``dut`` (default: ``design_for(header)``); returns the list of
    ``(transaction start cycle, byte index, mosi hex, expected, got)`` mismatches."""
    h = vf.header
    dut = dut or design_for(h)
    if h["spi_exec_latency"] != c.SPI_EXEC_LATENCY or h["input_latency"] != c.INPUT_LATENCY:
        raise ValueError("the vectors assume other gateware latencies than this design's")
    actions, samples, transactions = schedule(vf, dut.input_latency)
    length = vf.end - h["time_origin"]
    events = sorted(set(actions) | set(samples))

    async def bench(ctx):
        det = 0
        now = 0
        for t in events:
            if t > now:
                await ctx.tick().repeat(t - now)
                now = t
            for pin, bit, value in actions.get(t, ()):
                if pin == "det":
                    det = det | (1 << bit) if value else det & ~(1 << bit)
                    ctx.set(dut.det, det)
                else:
                    ctx.set(getattr(dut, pin), value)
            if t in samples:
                tr, i = samples[t]
                if i % 8 == 0:
                    tr.got.append(0)
                tr.got[-1] = tr.got[-1] << 1 | ctx.get(dut.miso)
        if length > now:
            await ctx.tick().repeat(length - now)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    bad = []
    for tr in transactions:
        for i, (want, got) in enumerate(zip(tr.miso, tr.got)):
            if want != got:
                bad.append((tr.at, i, tr.mosi.hex(), want, got))
        if len(tr.got) != len(tr.miso):
            bad.append((tr.at, len(tr.got), tr.mosi.hex(), len(tr.miso), len(tr.got)))
    return bad
