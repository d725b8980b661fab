"""Bluesky / ophyd-async support for the flyscan position-triggered counter.

* `FlyScanCounter`: the ophyd-async device over the host driver's EPICS PVs;
* `exafs`: energy grids and energy ↔ monochromator encoder conversion;
* `fly_counter`, `fly_exafs`: plans.
"""

from .device import (
    FlyScanCounter,
    FlyScanError,
    FlyScanInfo,
    FlyScanTimeout,
    PointEncoding,
    ScanDirection,
    ScanMode,
    ScanStatus,
)
from .exafs import (
    CRYSTALS,
    SI111_D_SPACING,
    SI311_D_SPACING,
    MonoCalibration,
    bragg_angle_deg,
    bragg_energy_ev,
    energy_to_k,
    exafs_energy_grid,
    k_to_energy,
)
from .plans import default_timeout, fly_counter, fly_exafs

__all__ = [
    "default_timeout",
    "CRYSTALS",
    "SI111_D_SPACING",
    "SI311_D_SPACING",
    "FlyScanCounter",
    "FlyScanError",
    "FlyScanInfo",
    "FlyScanTimeout",
    "MonoCalibration",
    "PointEncoding",
    "ScanDirection",
    "ScanMode",
    "ScanStatus",
    "bragg_angle_deg",
    "bragg_energy_ev",
    "energy_to_k",
    "exafs_energy_grid",
    "fly_counter",
    "fly_exafs",
    "k_to_energy",
]
