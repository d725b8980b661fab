"""Full chain: simulator → firmware → host driver → IOC → this device and the RunEngine.

Run only when the chain is up; these tests read:

* ``FLYSCAN_PREFIX``: PV prefix of the driver's IOC (e.g. ``FLY:``);
* ``EPICS_CA_ADDR_LIST``: where that IOC is (e.g. ``127.0.0.1:5070``);
* ``FLYSCAN_TRUTH``: the simulator's ground truth, JSON lines with keys index, position,
  timestamp, live_time, flags, counts (one line per point; a new scan restarts at index 0);
* optional ``FLYSCAN_CLOCK_HZ``: device clock rate, when the truth's timestamp and live_time
  are in ticks rather than seconds (a ``clock_hz`` key in the truth lines does the same);
* optional ``FLYSCAN_CHAIN_START``/``_STEP``/``_NPOINTS``: presets the simulated axis passes
  (default 1000, 50, 200); ``FLYSCAN_CHAIN_POSITIONS``: a JSON file with the preset list
  (list mode); ``FLYSCAN_CHAIN_DIRECTION``: POSITIVE, NEGATIVE, EITHER or BIDIRECTIONAL;
* for the EXAFS test: ``FLYSCAN_PLAN`` (the scenario's ``sim plan`` JSON: calibration, roles,
  sample, grid) and optionally ``FLYSCAN_SIM_STDOUT`` (the simulator's stdout, whose
  ``DEVICE_CLOCK`` line ties device time to the wall clock).

The simulator is expected to move its axis through the presets once the scan is armed.
Every point of every RunEngine event is compared with the ground truth.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd_async.core import init_devices
from ophyd_async.epics.core import epics_signal_r

from conftest import ORIGINAL_ENV
from flyscan_bluesky import FlyScanCounter, FlyScanInfo, ScanDirection, fly_counter
from truth import compare_with_truth, load_truth

pytestmark = pytest.mark.chain

TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def chain() -> dict[str, str]:
    missing = [k for k, v in ORIGINAL_ENV.items() if not v]
    if missing:
        pytest.skip(
            f"full-chain test needs {', '.join(missing)} (the host driver, its IOC and the "
            "simulator running); see test_chain.py"
        )
    return {k: str(v) for k, v in ORIGINAL_ENV.items()}


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise pytest.UsageError(f"{name}={raw!r} is not an integer") from None


def _clock_hz(truth_path: Path) -> float | None:
    raw = os.environ.get("FLYSCAN_CLOCK_HZ")
    if raw:
        return float(raw)
    with truth_path.open(encoding="utf-8") as f:
        first = f.readline()
    return float(json.loads(first)["clock_hz"]) if first and "clock_hz" in first else None


def last_scan(path: Path, tmp_path: Path) -> list[dict]:
    """The last scan of a truth file that may hold several (each restarts at index 0)."""
    # The simulator ends its file with one {"summary": {...}} line.
    lines = [
        ln
        for ln in path.read_text(encoding="utf-8").splitlines()
        if ln.strip() and "summary" not in json.loads(ln)
    ]
    starts = [i for i, ln in enumerate(lines) if json.loads(ln).get("index") == 0]
    if not starts:
        raise AssertionError(f"{path} holds no point with index 0")
    part = tmp_path / "last_scan.jsonl"
    part.write_text("\n".join(lines[starts[-1] :]) + "\n", encoding="utf-8")
    return load_truth(part)


@pytest.fixture(scope="module")
def counter(RE, chain):
    prefix = chain["FLYSCAN_PREFIX"]
    probe = epics_signal_r(int, f"{prefix}NumChannels", name="probe")
    call_in_bluesky_event_loop(probe.connect(timeout=10))
    n = call_in_bluesky_event_loop(probe.get_value())
    with init_devices():
        dev = FlyScanCounter(prefix, num_channels=n, name="counter")
    return dev


def _wait_for(path: Path, timeout_s: float = 30.0) -> None:
    """The simulator writes its truth when it exits (``--exit-when-done``), just after the scan."""
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if time.monotonic() > deadline:
            raise AssertionError(f"no ground truth at {path} {timeout_s:.0f} s after the scan")
        time.sleep(0.1)


def _run_and_compare(RE, docs, counter, info, chain, tmp_path):
    RE(fly_counter(counter, info, flush_period=0.2))
    truth_path = Path(chain["FLYSCAN_TRUTH"])
    _wait_for(truth_path)
    truth = last_scan(truth_path, tmp_path)
    data = docs.stream_data("primary")
    assert len(truth) == info.expected_points, "truth file does not hold the whole scan"
    problems = compare_with_truth(data, truth, "counter", info.channels, _clock_hz(truth_path))
    assert problems == [], f"{len(problems)} differences, first: {problems[:10]}"
    assert docs.of("stop")[0]["exit_status"] == "success"


def test_chain_start_step_count(RE, docs, counter, chain, tmp_path):
    n = call_in_bluesky_event_loop(counter.num_channels.get_value())
    info = FlyScanInfo.start_step_count(
        _int_env("FLYSCAN_CHAIN_START", 1000),
        _int_env("FLYSCAN_CHAIN_STEP", 50),
        _int_env("FLYSCAN_CHAIN_NPOINTS", 200),
        direction=ScanDirection[os.environ.get("FLYSCAN_CHAIN_DIRECTION", "EITHER")],
        channel_mask=(1 << n) - 1,
        timeout=TIMEOUT_S,
    )
    _run_and_compare(RE, docs, counter, info, chain, tmp_path)


def test_chain_list_mode(RE, docs, counter, chain, tmp_path):
    listed = os.environ.get("FLYSCAN_CHAIN_POSITIONS")
    if listed:
        # The scenario's own list (an EXAFS k-grid), the presets the simulated axis passes.
        positions = [int(p) for p in json.loads(Path(listed).read_text(encoding="utf-8"))]
    else:
        start = _int_env("FLYSCAN_CHAIN_START", 1000)
        step = _int_env("FLYSCAN_CHAIN_STEP", 50)
        npoints = _int_env("FLYSCAN_CHAIN_NPOINTS", 200)
        # Uneven spacing (as in an EXAFS grid) within the range of the start/step/count scan.
        positions = [start + step * i + (step // 3 if i % 3 == 1 else 0) for i in range(npoints)]
    n = call_in_bluesky_event_loop(counter.num_channels.get_value())
    info = FlyScanInfo.from_positions(
        positions,
        direction=ScanDirection[os.environ.get("FLYSCAN_CHAIN_DIRECTION", "EITHER")],
        channel_mask=(1 << n) - 1,
        timeout=TIMEOUT_S,
    )
    _run_and_compare(RE, docs, counter, info, chain, tmp_path)


def _device_clock(path: str | None) -> tuple[float, float, float] | None:
    """The simulator's ``DEVICE_CLOCK <unix s> <tick> <ticks per s>`` line, if there is one."""
    if not path or not Path(path).is_file():
        return None
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("DEVICE_CLOCK "):
            unix_s, tick, rate = (float(w) for w in line.split()[1:4])
            return unix_s, tick, rate
    return None


def test_fly_exafs_stored_in_tiled(RE, docs, counter, chain, tmp_path):
    """fly_exafs through the full chain into an embedded Tiled catalog, read back: every
    point equals the ground truth, energies sit on the plan's grid to one encoder count, Larch
    finds the scenario's edge, the XDI export is read by Larch with μ derived."""
    from larch.io import read_xdi

    from flyscan_bluesky import exafs_energy_grid, fly_exafs
    from flyscan_bluesky.analysis import load_scan, reduce, trigger_times
    from flyscan_bluesky.demo import plan_arguments
    from flyscan_bluesky.storage import open_catalog, tiled_writer
    from flyscan_bluesky.xdi import write_xdi

    plan_path = os.environ.get("FLYSCAN_PLAN")
    if not plan_path:
        pytest.skip("needs FLYSCAN_PLAN (the scenario's `sim plan` JSON)")
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    args = plan_arguments(plan)
    catalog = open_catalog(tmp_path / "catalog")
    token = RE.subscribe(tiled_writer(catalog))
    try:
        (uid,) = RE(fly_exafs(counter, timeout=TIMEOUT_S, flush_period=0.25, **args)
                    ).run_start_uids
    finally:
        RE.unsubscribe(token)
    truth_path = Path(chain["FLYSCAN_TRUTH"])
    _wait_for(truth_path)
    truth = last_scan(truth_path, tmp_path)

    # Read back from a fresh client of the same catalog, as a later session would.
    run = open_catalog(tmp_path / "catalog")[uid]
    ds = run["primary"].read()
    data = {name: ds[name].values.tolist() for name in ds.data_vars}
    roles = {n: r for n, r in enumerate(plan["roles"]) if r}
    assert counter.channel_keys == {0: "i0", 1: "it", 2: "if", 3: "iref"}, "roles name the keys"
    assert {f"counter-{k}" for k in ("i0", "it", "if", "iref", "mu_trans", "mu_fluor",
                                     "mu_ref", "energy", "energy_centre")} <= set(data)
    assert run.metadata["start"]["roles"] == {str(n): r for n, r in roles.items()}
    channels = sorted(roles)
    problems = compare_with_truth(data, truth, "counter", channels, _clock_hz(truth_path),
                                  counter.channel_keys)
    assert len(truth) == len(plan["positions"]) == len(data["counter-position"])
    assert problems == [], f"{len(problems)} differences, first: {problems[:10]}"

    # Energies at the triggers: the plan's grid to within one encoder count's worth.
    mono, e0 = args["mono"], args["e0"]
    grid = exafs_energy_grid(e0, **args["grid"])
    energy = np.asarray(data["counter-energy"])
    positions = np.asarray(data["counter-position"])
    per_count = np.abs(mono.counts_to_energy(positions + 1) - mono.counts_to_energy(positions))
    assert np.all(np.abs(energy - grid) <= per_count), np.max(np.abs(energy - grid) / per_count)

    # The readings' time stamps are the triggers on the wall clock.
    clock = _device_clock(os.environ.get("FLYSCAN_SIM_STDOUT"))
    if clock is not None:
        unix_s, tick, rate = clock
        want = unix_s + (np.asarray([p["timestamp"] for p in truth]) - tick) / rate
        err = trigger_times(run) - want
        assert abs(float(np.median(err))) < 0.05 and np.all(np.abs(err) < 0.25), err

    # Larch finds the scenario's edge in transmission and fluorescence.
    scan = load_scan(run)
    assert scan.partial_points == 1 and len(scan) == len(truth) - 1
    for kind in ("mu_trans", "mu_fluor"):
        x = reduce(scan.energy, scan.mu[kind], kind)
        assert abs(x.e0 - e0) < 2.0, f"{kind}: Larch E0 {x.e0} eV, scenario {e0} eV"
        assert x.edge_step > 0

    # XDI: Larch reads it with the d-spacing and derives μ from the dictionary's columns.
    path = write_xdi(scan, tmp_path / "scan.xdi")
    g = read_xdi(str(path))
    assert g.dspacing == pytest.approx(mono.d_spacing, abs=1e-6)
    assert (g.element, g.edge) == (plan["sample"]["element"], plan["sample"]["edge"])
    assert g.array_labels[:5] == ["energy", "i0", "itrans", "ifluor", "irefer"]
    for mu in ("mutrans", "mufluor", "murefer"):
        assert getattr(g, mu).size == len(scan)
    assert np.allclose(g.mutrans, scan.mu["mu_trans"], atol=1e-5)
    assert np.allclose(g.energy, scan.energy, atol=1e-5)
