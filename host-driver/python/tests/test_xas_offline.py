"""The XAS pieces that need no IOC: the plan's presets against the simulator's (`sim plan`),
role-named keys and μ with partial bins kept out, and a run stored in an embedded Tiled
catalog, read back, exported as XDI and read by Larch."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from event_model import compose_run

from epics_support import WORKSPACE, binary
from flyscan_bluesky import MonoCalibration, exafs_energy_grid
from flyscan_bluesky.analysis import load_scan, trigger_times
from flyscan_bluesky.demo import DemoError, plan_arguments
from flyscan_bluesky.device import PASS_START, absorption, channel_keys
from flyscan_bluesky.storage import open_catalog, tiled_writer
from flyscan_bluesky.xdi import write_xdi, xdi_text


@pytest.mark.parametrize("scenario", ["cu_exafs.toml", "exafs_kgrid.toml"])
def test_plan_gives_the_simulators_presets(scenario):
    """Python's grid and Bragg law arm exactly the presets the simulated monochromator passes."""
    out = subprocess.run(
        [str(binary("sim")), "plan", "--scenario", str(WORKSPACE / "sim" / "scenarios" / scenario)],
        capture_output=True, text=True, check=True,
    )
    plan = json.loads(out.stdout)
    args = plan_arguments(plan)  # raises if the presets differ
    mono = args["mono"]
    assert mono.crystal == "Si(111)" and mono.d_spacing == pytest.approx(3.1356012, abs=1e-7)
    energies = exafs_energy_grid(args["e0"], **args["grid"])
    assert np.allclose(energies, plan["energies"], atol=0.05)


def test_plan_arguments_refuse_what_they_cannot_use():
    with pytest.raises(DemoError, match="not an EXAFS scan"):
        plan_arguments({"mono": {}, "sample": {}, "exafs_grid": None})
    with pytest.raises(DemoError, match="incomplete"):
        plan_arguments({"mono": {"d_spacing": 3.1}, "sample": {}, "exafs_grid": {"k_max": 12}})


def test_channel_keys_follow_roles():
    assert channel_keys({0: "I0", 1: "It", 2: "If", 3: "Iref", 4: ""}) == {
        0: "i0", 1: "it", 2: "if", 3: "iref", 4: "ch4"}
    # Two fluorescence elements: each keeps its channel number; odd names are made keys.
    assert channel_keys({2: "If", 5: "If", 6: "Diode B"}) == {2: "if_ch2", 5: "if_ch5",
                                                               6: "diode_b"}
    # A role that would clash with a fixed key does not take it.
    assert channel_keys({1: "Energy", 2: "ch3"}) == {1: "energy_ch1", 2: "ch3_ch2"}


def test_absorption_keeps_partial_bins_out():
    counts = {"I0": np.array([1000, 1000, 1000, 0]), "It": np.array([500, 400, 0, 10]),
              "If": np.array([10, 20, 30, 40])}
    flags = np.array([PASS_START, 0, 0, 0])
    mu = absorption(counts, flags)
    assert set(mu) == {"mu_trans", "mu_fluor"}
    assert np.isnan(mu["mu_trans"][0]) and np.isnan(mu["mu_fluor"][0])
    assert mu["mu_trans"][1] == pytest.approx(np.log(1000 / 400))
    assert np.isnan(mu["mu_trans"][2]) and np.isnan(mu["mu_trans"][3])
    assert mu["mu_fluor"][2] == pytest.approx(0.03)


def _store_synthetic_run(catalog, n=200, with_element=True):
    """A fly-scan run as the device emits it (role keys, energies, flags), by hand."""
    mono = MonoCalibration.for_crystal("Si(111)", counts_per_degree=-20_000, offset_counts=260_000)
    energy = np.linspace(8900.0, 9100.0, n)
    position = mono.energy_to_counts(energy)
    e_end = mono.counts_to_energy(position)
    e_start = np.concatenate([[np.nan], e_end[:-1]])
    centre = mono.counts_to_energy(np.concatenate([[np.nan], (position[1:] + position[:-1]) / 2]))
    mu = 0.3 + 1.0 / (1 + np.exp(-(centre - 8979.0) / 1.5))
    i0 = np.full(n, 100_000)
    it = np.rint(i0 * np.exp(-np.nan_to_num(mu))).astype(int)
    flags = np.zeros(n, dtype=int)
    flags[0] = PASS_START
    md = {"plan_name": "fly_exafs", "e0": 8979.0, "crystal": "Si(111)",
          "d_spacing": mono.d_spacing, "counts_per_degree": mono.counts_per_degree,
          "offset_counts": mono.offset_counts, "roles": {"0": "I0", "1": "It"}}
    if with_element:
        md.update(element="Cu", edge="K")
    run = compose_run(metadata=md)
    keys = {"counter-i0": "integer", "counter-it": "integer", "counter-position": "integer",
            "counter-flags": "integer", "counter-energy": "number",
            "counter-energy_start": "number", "counter-energy_centre": "number",
            "counter-live_time": "number", "counter-timestamp": "number"}
    desc = run.compose_descriptor(name="primary", data_keys={
        k: {"source": "synthetic", "dtype": t, "shape": []} for k, t in keys.items()})
    wall = 1.8e9 + np.arange(n) * 0.01
    data = {"counter-i0": i0.tolist(), "counter-it": it.tolist(),
            "counter-position": position.tolist(), "counter-flags": flags.tolist(),
            "counter-energy": e_end.tolist(), "counter-energy_start": e_start.tolist(),
            "counter-energy_centre": centre.tolist(), "counter-live_time": [0.01] * n,
            "counter-timestamp": (np.arange(n) * 0.01).tolist()}
    page = desc.compose_event_page(data=data, timestamps={k: wall.tolist() for k in data},
                                   seq_num=list(range(1, n + 1)))
    writer = tiled_writer(catalog)
    for name, doc in [("start", run.start_doc), ("descriptor", desc.descriptor_doc),
                      ("event_page", page), ("stop", run.compose_stop())]:
        writer(name, doc)
    return run.start_doc["uid"], mono, wall


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    """One embedded catalog for the module (creating one takes seconds)."""
    return tmp_path_factory.mktemp("catalog")


def test_stored_run_reads_back_and_exports_xdi_larch_reads(tmp_path, catalog_dir):
    from larch.io import read_xdi

    uid, mono, wall = _store_synthetic_run(open_catalog(catalog_dir))
    # A new client of the same directory: the run outlives the process that wrote it.
    run = open_catalog(catalog_dir)[uid]
    assert np.allclose(trigger_times(run), wall)
    scan = load_scan(run)
    assert scan.partial_points == 1 and len(scan) == 199
    assert scan.roles == {"i0": "I0", "it": "It"}
    path = write_xdi(scan, tmp_path / "x" / "scan.xdi")
    text = path.read_text()
    assert text.startswith("# XDI/1.0 flyscan/")
    for field in ("Element.symbol: Cu", "Element.edge: K", "Mono.d_spacing: 3.135601",
                  "Facility.name:", "Facility.xray_source:", "Beamline.name:",
                  "Scan.start_time:", "Column.1: energy eV", "Column.2: i0", "Column.3: itrans"):
        assert field in text, field
    g = read_xdi(str(path))
    assert g.dspacing == pytest.approx(mono.d_spacing, abs=1e-6)
    assert np.allclose(g.mutrans, scan.mu["mu_trans"], atol=1e-9)
    assert np.allclose(g.energy, scan.energy, atol=1e-5)


def test_xdi_refuses_a_run_without_required_fields(catalog_dir):
    uid, _, _ = _store_synthetic_run(open_catalog(catalog_dir), with_element=False)
    scan = load_scan(open_catalog(catalog_dir)[uid])
    with pytest.raises(ValueError, match="Element.symbol"):
        xdi_text(scan)
