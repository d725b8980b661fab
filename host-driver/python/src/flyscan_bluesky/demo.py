"""The scientist's path, end to end: ``python -m flyscan_bluesky.demo``.

Runs `fly_exafs` through a real RunEngine (with its progress bar) against the counter's IOC,
stores the run in a Tiled catalog through the Bluesky Tiled writer, reads it back from the
catalog, writes the XDI file and the μ(E)/χ(k) picture, and prints what Larch found.

The scan comes from a plan description — the JSON that the simulator's ``sim plan`` prints for
a scenario (monochromator calibration, channel roles, sample, EXAFS grid, presets) — so the
plan arms exactly the presets the simulated monochromator passes; ``--result`` writes the
points as read back from the catalog (for a comparison with the simulator's ground truth).

Example (the IOC and the simulator running, as ``./flyscan.sh demo`` starts them)::

    sim plan --scenario sim/scenarios/cu_exafs.toml > plan.json
    python -m flyscan_bluesky.demo --prefix FLY: --plan plan.json --catalog out/catalog \\
        --out out/demo
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

#: `sim plan`'s grid keys → `exafs_energy_grid`'s keyword arguments.
GRID_KEYS = {
    "pre_edge_start_ev": "pre_start",
    "pre_edge_step_ev": "pre_step",
    "xanes_start_ev": "xanes_start",
    "xanes_step_ev": "xanes_step",
    "xanes_end_ev": "xanes_end",
    "k_step": "k_step",
    "k_max": "kmax",
}


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


def plan_arguments(plan: dict[str, Any]) -> dict[str, Any]:
    """`fly_exafs` arguments from a `sim plan` description: calibration, e0, grid, channel
    mask, roles, element and edge.

    :raises DemoError: if the description is not an EXAFS scan or misses a field, or if the
        grid it gives does not reproduce its presets here.
    """
    from .exafs import MonoCalibration, exafs_energy_grid

    try:
        m, sample, grid = plan["mono"], plan["sample"], plan["exafs_grid"]
        if not grid:
            raise DemoError("the plan is not an EXAFS scan (no exafs_grid): use an EXAFS "
                            "scenario such as sim/scenarios/cu_exafs.toml")
        mono = MonoCalibration(float(m["d_spacing"]), float(m["counts_per_degree"]),
                               float(m["angle_offset"]), str(m["crystal"]))
        kwargs = {GRID_KEYS[k]: float(v) for k, v in grid.items()}
        e0 = float(sample["e0_ev"])
        mask = int(plan["config"]["channel_mask"])
        roles = {n: r for n, r in enumerate(plan["roles"]) if mask >> n & 1}
        args = {"mono": mono, "e0": e0, "grid": kwargs, "channel_mask": mask, "roles": roles,
                "element": str(sample["element"]), "edge": str(sample["edge"])}
    except (KeyError, TypeError, ValueError) as e:
        raise DemoError(f"plan description incomplete or malformed: {e!r}") from e
    positions = mono.position_list(exafs_energy_grid(e0, **kwargs))
    if positions != [int(p) for p in plan["positions"]]:
        raise DemoError("the grid and calibration give other presets here than in the plan "
                        "description: the Python and simulator grid rules disagree")
    return args


def run_demo(prefix: str, plan: dict[str, Any], catalog_location: str | Path, out: Path,
             timeout: float = 120.0, progress: bool = True) -> dict[str, Any]:
    """Flies the plan's scan, stores it, reads it back, exports it; returns the summary (and
    the points as read back) as a JSON-able dict."""
    from bluesky import RunEngine
    from bluesky.utils import ProgressBarManager
    from ophyd_async.core import init_devices

    from .analysis import load_scan, reduce, trigger_times
    from .device import FlyScanCounter
    from .plans import fly_exafs
    from .plot import plot_scan
    from .storage import open_catalog, tiled_writer
    from .xdi import write_xdi

    args = plan_arguments(plan)
    t_open = time.monotonic()
    catalog = open_catalog(catalog_location)
    open_s = time.monotonic() - t_open
    RE = RunEngine({}, call_returns_result=True)
    if progress:
        RE.waiting_hook = ProgressBarManager()
    RE.subscribe(tiled_writer(catalog))
    with init_devices():
        counter = FlyScanCounter(prefix, num_channels=len(plan["roles"]), name="counter")
    t_run = time.monotonic()
    result = RE(fly_exafs(counter, timeout=timeout, flush_period=0.25, **args))
    run_s = time.monotonic() - t_run
    (uid,) = result.run_start_uids
    run = catalog[uid]
    scan = load_scan(run)
    reduced = {kind: reduce(scan.energy, mu, kind) for kind, mu in scan.mu.items()
               if kind in ("mu_trans", "mu_fluor")}
    out.mkdir(parents=True, exist_ok=True)
    xdi = write_xdi(scan, out / "scan.xdi")
    png = plot_scan(scan, reduced, out / "scan.png",
                    title=f"flyscan demo: {scan.start.get('element')} "
                          f"{scan.start.get('edge')} edge, fly EXAFS through Bluesky and Tiled")
    ds = run["primary"].read()
    keys = counter.channel_keys
    readback = {
        "position": ds["counter-position"].values.tolist(),
        "timestamp": ds["counter-timestamp"].values.tolist(),
        "live_time": ds["counter-live_time"].values.tolist(),
        "flags": ds["counter-flags"].values.tolist(),
        "energy": ds["counter-energy"].values.tolist(),
        "wall_time": trigger_times(run).tolist(),
        "channels": {str(n): ds[f"counter-{k}"].values.tolist() for n, k in keys.items()},
    }
    return {
        "uid": uid,
        "catalog": str(catalog_location),
        "catalog_open_s": open_s,
        "run_s": run_s,
        "points_stored": int(run.metadata["stop"]["num_events"].get("primary", 0)),
        "whole_bins": len(scan),
        "partial_bins": scan.partial_points,
        "e0_scenario": float(plan["sample"]["e0_ev"]),
        "e0_larch": {kind: x.e0 for kind, x in reduced.items()},
        "edge_step_larch": {kind: x.edge_step for kind, x in reduced.items()},
        "channel_keys": {str(n): k for n, k in keys.items()},
        "clock_offset": counter.clock_offset,
        "xdi": str(xdi),
        "png": str(png),
        "readback": readback,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module's docstring; exit status 0 on success, 1 with the reason
    on stderr otherwise."""
    ap = argparse.ArgumentParser(prog="python -m flyscan_bluesky.demo",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix", required=True, help="PV prefix of the counter's IOC")
    ap.add_argument("--plan", required=True, type=Path, help="`sim plan` JSON of the scan")
    ap.add_argument("--catalog", required=True,
                    help="embedded catalog directory, or a Tiled server's http(s) address")
    ap.add_argument("--out", required=True, type=Path, help="folder for scan.xdi and scan.png")
    ap.add_argument("--result", type=Path, help="write the summary and read-back points here")
    ap.add_argument("--timeout", type=float, default=120.0, help="longest scan, s")
    ap.add_argument("--no-progress", action="store_true", help="no RunEngine progress bar")
    a = ap.parse_args(argv)
    try:
        plan = json.loads(a.plan.read_text(encoding="utf-8"))
        summary = run_demo(a.prefix, plan, a.catalog, a.out, a.timeout, not a.no_progress)
    except (DemoError, OSError, json.JSONDecodeError) as e:
        print(f"flyscan demo: {e}", file=sys.stderr)
        return 1
    if a.result:
        a.result.write_text(json.dumps(summary), encoding="utf-8")
    e0 = summary["e0_scenario"]
    print(f"  stored          run {summary['uid']} in the Tiled catalog {summary['catalog']}")
    print(f"  read back       {summary['points_stored']} points ({summary['whole_bins']} whole "
          f"bins, {summary['partial_bins']} partial left out of mu)")
    for kind, found in summary["e0_larch"].items():
        print(f"  Larch E0        {kind}: {found:.2f} eV (scenario {e0:.2f} eV, "
              f"{found - e0:+.2f} eV), edge step {summary['edge_step_larch'][kind]:.3f}")
    print(f"  wrote           {summary['xdi']}\n                  {summary['png']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["DemoError", "GRID_KEYS", "main", "plan_arguments", "run_demo"]
