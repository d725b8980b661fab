"""μ(E) and χ(k) from a stored fly scan: the points of a run read back from Tiled, the
absorption in transmission, fluorescence and reference, and Larch's normalisation and
background removal (`pre_edge`, `autobk`), the field's standard.

Bin semantics (the start document's ``bins``): a point's counts integrate from the previous
trigger to its own; its μ belongs to the bin's centre energy. The first point of a pass
(flag PASS_START) began at the arm or at the turn-around, not at a preset: it is partial and
left out of μ(E) here (its counts stay in the stored run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .device import MU_KEYS, PASS_START, ROLES

#: Data-key name of each role (``i0`` → ``I0`` …).
_ROLE_OF_KEY = {key: role for role, (key, _) in ROLES.items()}


@dataclass
class XasScan:
    """The whole bins of one stored fly scan, as columns (one entry per point)."""

    uid: str
    """The run's uid."""
    start: dict[str, Any]
    """The run's start document (element, edge, e0, crystal, d_spacing, roles, grid …)."""
    stop: dict[str, Any]
    """The run's stop document."""
    energy: np.ndarray
    """Energy at the bin's centre, eV: the abscissa of μ(E)."""
    energy_start: np.ndarray
    """Energy at the bin's start (previous trigger), eV."""
    energy_end: np.ndarray
    """Energy at the trigger (bin end), eV."""
    position: np.ndarray
    """Encoder position at the trigger, counts."""
    timestamp: np.ndarray
    """Trigger time on the wall clock, Unix s."""
    live_time: np.ndarray
    """Gate time of the bin, s."""
    counts: dict[str, np.ndarray]
    """Counts of every channel by data-key name (``i0``, ``it``, ``if``, ``iref``, ``ch4`` …)."""
    roles: dict[str, str]
    """Role of each channel key that has one (``{"i0": "I0", …}``)."""
    mu: dict[str, np.ndarray] = field(default_factory=dict)
    """μ by kind: ``mu_trans`` = ln(I0/It), ``mu_fluor`` = If/I0, ``mu_ref`` = ln(It/Iref)."""
    partial_points: int = 0
    """Points left out because their bin was partial (PASS_START) or they carry no energy."""

    def __len__(self) -> int:
        return int(self.energy.size)


def load_scan(run: Any, device: str = "counter", stream: str = "primary") -> XasScan:
    """The whole bins of a stored run (a Tiled ``BlueskyRun``) of the `device`'s fly scan.

    :raises KeyError: if the run has no such stream or the device's keys are missing.
    """
    ds = run[stream].read()
    prefix = f"{device}-"
    cols = {name[len(prefix):]: np.asarray(ds[name].values) for name in ds.data_vars
            if name.startswith(prefix)}
    missing = {"energy", "energy_start", "energy_centre", "flags", "position"} - set(cols)
    if missing:
        raise KeyError(f"run {run.metadata['start']['uid']}: no {sorted(missing)} of {device}")
    flags = cols["flags"].astype(np.int64)
    keep = ((flags & PASS_START) == 0) & np.isfinite(cols["energy_centre"])
    counts = {k: v[keep] for k, v in cols.items() if k in _ROLE_OF_KEY or k.startswith("ch")
              or any(k.startswith(f"{r}_ch") for r in _ROLE_OF_KEY)}
    timestamp = trigger_times(run, device, stream)[keep]
    meta = run.metadata
    scan = XasScan(
        uid=meta["start"]["uid"],
        start=dict(meta["start"]),
        stop=dict(meta.get("stop") or {}),
        energy=cols["energy_centre"][keep],
        energy_start=cols["energy_start"][keep],
        energy_end=cols["energy"][keep],
        position=cols["position"][keep],
        timestamp=timestamp,
        live_time=cols.get("live_time", np.full(flags.shape, np.nan))[keep],
        counts=counts,
        roles={k: _ROLE_OF_KEY[k] for k in counts if k in _ROLE_OF_KEY},
        partial_points=int(np.count_nonzero(~keep)),
    )
    by_role = {role: scan.counts[k] for k, role in scan.roles.items()}
    for kind, (num, den, log) in MU_KEYS.items():
        if num in by_role and den in by_role:
            a, b = (by_role[r].astype(np.float64) for r in (num, den))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where((a > 0) & (b > 0), a / b, np.nan)
            scan.mu[kind] = np.log(ratio) if log else ratio
    return scan


def trigger_times(run: Any, device: str = "counter", stream: str = "primary") -> np.ndarray:
    """Every point's trigger on the wall clock (Unix s): the readings' time stamps, which the
    device sets to its trigger time (stored by Tiled as the ``ts_<key>`` columns)."""
    return np.asarray(run[stream][f"ts_{device}-position"].read(), dtype=np.float64)


@dataclass
class Xafs:
    """Larch's reduction of one μ(E): E0, edge step, normalised μ and χ(k)."""

    kind: str
    """Which μ: ``mu_trans``, ``mu_fluor`` or ``mu_ref``."""
    energy: np.ndarray
    mu: np.ndarray
    e0: float
    """Edge energy Larch found (steepest rise), eV."""
    edge_step: float
    norm: np.ndarray
    """μ normalised to the edge step (pre-edge line 0, post-edge curve 1)."""
    k: np.ndarray
    chi: np.ndarray


def reduce(energy: np.ndarray, mu: np.ndarray, kind: str = "mu_trans",
           rbkg: float = 1.0, kweight: int = 2) -> Xafs:
    """Larch `pre_edge` (E0 found from the data, edge step, normalisation) and `autobk`
    (background removal: χ(k)) on the finite points of one μ(E), sorted by energy."""
    from larch import Group
    from larch.xafs import autobk, pre_edge

    ok = np.isfinite(energy) & np.isfinite(mu)
    order = np.argsort(energy[ok])
    e, m = energy[ok][order], mu[ok][order]
    g = Group(energy=e, mu=m)
    pre_edge(g)
    autobk(g, rbkg=rbkg, kweight=kweight)
    return Xafs(kind=kind, energy=e, mu=m, e0=float(g.e0), edge_step=float(g.edge_step),
                norm=np.asarray(g.norm), k=np.asarray(g.k), chi=np.asarray(g.chi))


__all__ = ["Xafs", "XasScan", "load_scan", "reduce", "trigger_times"]
