"""XDI 1.0 export of a stored fly scan (the XAS Data Interchange format read by Larch,
Athena and the XAS data libraries).

Columns use the XDI dictionary's names so readers derive μ themselves: ``energy`` (the bins'
centre, eV), ``i0``, ``itrans``, ``ifluor``, ``irefer`` (counts, by the channels' roles), then
``energy_start``/``energy_end`` (eV), ``time`` (live time, s) and any channel without an XAS
role (``ch<N>``). Required fields (``Element.symbol``, ``Element.edge``, ``Mono.d_spacing``)
and the recommended ones (``Facility.name``, ``Facility.xray_source``, ``Beamline.name``,
``Scan.start_time``, ``Mono.name`` …) come from the run's start document and the arguments.
Partial bins (PASS_START) are left out.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .analysis import XasScan
from .device import ROLES

#: XDI column name of each role.
XDI_COLUMN = {role: column for role, (_, column) in ROLES.items()}


@dataclass(frozen=True)
class Facility:
    """Where the data were taken (XDI recommended fields)."""

    name: str = "flyscan simulator"
    xray_source: str = "simulated bending magnet"
    beamline: str = "flyscan demo"


def _iso(t: float | None) -> str | None:
    if t is None or not math.isfinite(t):
        return None
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).astimezone().isoformat(
        timespec="seconds")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flyscan-bluesky")
    except PackageNotFoundError:
        return "0"


def xdi_text(scan: XasScan, facility: Facility = Facility()) -> str:
    """The XDI 1.0 file of `scan` (a run read back with `analysis.load_scan`).

    :raises ValueError: if the run lacks a required field (element, edge, d-spacing) or has no
        I0 channel (no μ could be derived).
    """
    s = scan.start
    missing = [k for k in ("element", "edge", "d_spacing") if not s.get(k)]
    if missing:
        raise ValueError(f"run {scan.uid} lacks {missing} in its start document: XDI requires "
                         "Element.symbol, Element.edge and Mono.d_spacing")
    if "I0" not in scan.roles.values():
        raise ValueError(f"run {scan.uid}: no channel has the role I0, so no μ can be derived")
    columns: list[tuple[str, str, np.ndarray]] = [("energy", "eV", scan.energy)]
    for role in ROLES:
        for key, r in scan.roles.items():
            if r == role:
                columns.append((XDI_COLUMN[role], "", scan.counts[key]))
                break
    columns += [("energy_start", "eV", scan.energy_start), ("energy_end", "eV", scan.energy_end),
                ("time", "s", scan.live_time)]
    columns += [(k, "", v) for k, v in sorted(scan.counts.items()) if k not in scan.roles]

    stop_time = scan.stop.get("time")
    fields = [
        ("Element.symbol", s["element"]),
        ("Element.edge", s["edge"]),
        ("Mono.d_spacing", f"{float(s['d_spacing']):.6f}"),
        ("Mono.name", s.get("crystal") or None),
        ("Facility.name", facility.name),
        ("Facility.xray_source", facility.xray_source),
        ("Beamline.name", facility.beamline),
        ("Scan.start_time", _iso(s.get("time"))),
        ("Scan.end_time", _iso(stop_time)),
        ("Scan.edge_energy", f"{float(s['e0']):.3f} eV" if "e0" in s else None),
        ("Flyscan.run_uid", scan.uid),
        ("Flyscan.counts_per_degree", s.get("counts_per_degree")),
        ("Flyscan.angle_offset", s.get("offset_counts")),
        ("Flyscan.points", f"{len(scan)} (+{scan.partial_points} partial bins left out)"),
    ]
    for role in ROLES:
        for key, r in scan.roles.items():
            if r == role:
                fields.append((f"Detector.{XDI_COLUMN[role]}", f"{role}, channel key {key}"))
                break
    lines = [f"# XDI/1.0 flyscan/{_version()}"]
    lines += [f"# Column.{i}: {name} {units}".rstrip() for i, (name, units, _) in
              enumerate(columns, 1)]
    lines += [f"# {k}: {v}" for k, v in fields if v is not None]
    lines += [
        "# ///",
        "# Fly scan exported from the Tiled catalog by the flyscan Bluesky package.",
        "# Each row is one bin: counts from the previous trigger (energy_start) to this one",
        "# (energy_end); energy is the bin's centre. Partial first bins of a pass are left out.",
        "#----",
        "# " + " ".join(name for name, _, _ in columns),
    ]
    data = np.column_stack([np.asarray(c, dtype=np.float64) for _, _, c in columns])
    for row in data:
        lines.append(" ".join(_fmt(v) for v in row))
    return "\n".join(lines) + "\n"


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6f}"


def write_xdi(scan: XasScan, path: str | Path, facility: Facility = Facility()) -> Path:
    """Writes `xdi_text(scan)` to `path` (its folder is created); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(xdi_text(scan, facility), encoding="utf-8")
    return p


__all__ = ["XDI_COLUMN", "Facility", "write_xdi", "xdi_text"]
