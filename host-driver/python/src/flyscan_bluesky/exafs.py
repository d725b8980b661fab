"""EXAFS energy grids and monochromator energy ↔ encoder-count conversion.

Pure Python + numpy, so a plan can build and check its trigger list without any hardware.

Conventions:

* energies are in eV, photon wavenumbers `k` in Å⁻¹;
* `E − E0 = k² · HBAR2_OVER_2ME` with `HBAR2_OVER_2ME = ħ²/(2 mₑ) = 3.809982 eV·Å²`;
* Bragg's law `λ = 2 d sin θ` with `λ[Å] = HC_EV_ANGSTROM / E[eV]`, hc = 12 398.419 843 eV·Å;
* silicon d-spacings from the lattice constant a = 5.431 020 511 Å: d(hkl) = a/√(h²+k²+l²);
* the monochromator's encoder reads `counts = offset + counts_per_degree · θ[°]`, rounded to
  the nearest integer count (the firmware compares integer positions); the host driver's
  `DSpacing`, `CountsPerDegree` and `AngleOffset` PVs hold the same calibration.

The simulator (`sim/src/plan.rs`, `sim/src/mono.rs`) follows the same grid rules and constants,
so a plan built here arms exactly the presets of a simulated EXAFS scenario.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: ħ²/(2 mₑ) in eV·Å²: `E − E0 = k² · HBAR2_OVER_2ME`.
HBAR2_OVER_2ME = 3.809982
#: h·c in eV·Å (CODATA 2018): `λ[Å] = HC_EV_ANGSTROM / E[eV]`.
HC_EV_ANGSTROM = 12398.419843
#: h·c in keV·Å.
HC_KEV_ANGSTROM = HC_EV_ANGSTROM / 1000.0
#: Lattice constant of silicon at 22.5 °C, Å.
SI_LATTICE_ANGSTROM = 5.431020511

#: Lattice-plane spacing of Si(111), Å (a/√3).
SI111_D_SPACING = SI_LATTICE_ANGSTROM / math.sqrt(3.0)
#: Lattice-plane spacing of Si(311), Å (a/√11).
SI311_D_SPACING = SI_LATTICE_ANGSTROM / math.sqrt(11.0)

#: Named crystal cuts and their d-spacings (Å), for configuration files and command lines.
CRYSTALS: dict[str, float] = {"Si(111)": SI111_D_SPACING, "Si(311)": SI311_D_SPACING}


def energy_to_k(energy: npt.ArrayLike, e0: float) -> np.ndarray:
    """Photoelectron wavenumber k (Å⁻¹) for energies (eV) at or above the edge `e0` (eV).

    :raises ValueError: if any energy lies below `e0` (k is imaginary there).
    """
    e = np.asarray(energy, dtype=np.float64)
    if np.any(e < e0):
        raise ValueError(f"energies below the edge E0={e0} eV have no real k")
    return np.sqrt((e - e0) / HBAR2_OVER_2ME)


def k_to_energy(k: npt.ArrayLike, e0: float) -> np.ndarray:
    """Energy (eV) of photoelectron wavenumbers `k` (Å⁻¹) above the edge `e0` (eV)."""
    kk = np.asarray(k, dtype=np.float64)
    return e0 + kk * kk * HBAR2_OVER_2ME


def _arange_exclusive(start: float, stop: float, step: float) -> np.ndarray:
    """Points `start, start+step, …` strictly below `stop` (computed by index, no drift)."""
    n = math.ceil((stop - start) / step - 1e-9)
    return start + step * np.arange(max(n, 0), dtype=np.float64)


def exafs_energy_grid(
    e0: float,
    *,
    pre_start: float = -150.0,
    pre_step: float = 10.0,
    xanes_start: float = -30.0,
    xanes_step: float = 0.5,
    xanes_end: float = 40.0,
    k_step: float = 0.05,
    kmax: float = 14.0,
) -> np.ndarray:
    """Energies (eV, strictly increasing) of a standard three-region EXAFS scan.

    * pre-edge: `e0 + pre_start` up to (not including) `e0 + xanes_start`, every `pre_step` eV;
    * XANES: `e0 + xanes_start` up to (not including) `e0 + xanes_end`, every `xanes_step` eV;
    * EXAFS: constant steps of `k_step` Å⁻¹ from `k(e0 + xanes_end)` up to and including
      `kmax` (the last point is `kmax` itself when the steps do not land on it).

    Offsets (`pre_start`, `xanes_start`, `xanes_end`) are relative to `e0`.

    :raises ValueError: on non-positive steps, regions out of order, or `kmax` not beyond the
        XANES end.
    """
    for label, step in (("pre_step", pre_step), ("xanes_step", xanes_step), ("k_step", k_step)):
        if not step > 0:
            raise ValueError(f"{label} must be > 0, got {step}")
    if not pre_start < xanes_start < xanes_end:
        raise ValueError(
            "regions out of order: need pre_start < xanes_start < xanes_end, got "
            f"{pre_start}, {xanes_start}, {xanes_end}"
        )
    if xanes_end <= 0:
        raise ValueError(f"xanes_end must lie above the edge (> 0 eV), got {xanes_end}")
    k_start = math.sqrt(xanes_end / HBAR2_OVER_2ME)
    if not kmax > k_start:
        raise ValueError(
            f"kmax={kmax} Å⁻¹ must exceed k at the XANES end ({k_start:.4f} Å⁻¹)"
        )
    pre = e0 + _arange_exclusive(pre_start, xanes_start, pre_step)
    xanes = e0 + _arange_exclusive(xanes_start, xanes_end, xanes_step)
    k = _arange_exclusive(k_start, kmax, k_step)
    # Close the EXAFS region on kmax itself, unless the last step already sits on it.
    if k.size == 0 or kmax - k[-1] > 1e-9 * kmax:
        k = np.append(k, kmax)
    exafs = k_to_energy(k, e0)
    return np.concatenate([pre, xanes, exafs])


def bragg_angle_deg(energy_ev: npt.ArrayLike, d_spacing: float) -> np.ndarray:
    """Bragg angle θ (degrees) of a crystal with plane spacing `d_spacing` (Å) at energies (eV).

    :raises ValueError: if an energy is not positive or too low to diffract (λ > 2d).
    """
    e = np.asarray(energy_ev, dtype=np.float64)
    if d_spacing <= 0:
        raise ValueError(f"d-spacing must be > 0 Å, got {d_spacing}")
    if np.any(e <= 0):
        raise ValueError("energies must be > 0 eV")
    # The operation order of the simulator's Bragg law, so both round presets alike.
    s = HC_EV_ANGSTROM / (2.0 * d_spacing * e)
    if np.any(s > 1.0):
        e_min = HC_EV_ANGSTROM / (2.0 * d_spacing)
        raise ValueError(
            f"energy below {e_min:.1f} eV cannot be diffracted by d={d_spacing} Å (λ > 2d)"
        )
    return np.degrees(np.arcsin(s))


def bragg_energy_ev(theta_deg: npt.ArrayLike, d_spacing: float) -> np.ndarray:
    """Energy (eV) diffracted at Bragg angle `theta_deg` (degrees) by plane spacing `d_spacing`.

    :raises ValueError: if an angle is outside (0°, 90°].
    """
    th = np.asarray(theta_deg, dtype=np.float64)
    if d_spacing <= 0:
        raise ValueError(f"d-spacing must be > 0 Å, got {d_spacing}")
    if np.any(th <= 0) or np.any(th > 90):
        raise ValueError("Bragg angles must lie in (0°, 90°]")
    return HC_EV_ANGSTROM / (2.0 * d_spacing * np.sin(np.radians(th)))


@dataclass(frozen=True)
class MonoCalibration:
    """Maps the monochromator's Bragg angle to its encoder: `counts = offset + cpd · θ[°]`.

    :param d_spacing: crystal plane spacing in Å (`SI111_D_SPACING`, `SI311_D_SPACING`, …).
    :param counts_per_degree: encoder counts per degree of θ; negative when the encoder counts
        down as θ grows.
    :param offset_counts: encoder reading at θ = 0° (the host's `AngleOffset`).
    :param crystal: the crystal's name for metadata (`Crystal` PV, XDI `Mono.name`), e.g.
        ``"Si(111)"``; empty if unnamed.
    """

    d_spacing: float
    counts_per_degree: float
    offset_counts: float = 0.0
    crystal: str = ""

    def __post_init__(self) -> None:
        if not self.d_spacing > 0:
            raise ValueError(f"d-spacing must be > 0 Å, got {self.d_spacing}")
        if self.counts_per_degree == 0 or not math.isfinite(self.counts_per_degree):
            raise ValueError(
                f"counts_per_degree must be finite and non-zero, got {self.counts_per_degree}"
            )

    @classmethod
    def for_crystal(
        cls, crystal: str, counts_per_degree: float, offset_counts: float = 0.0
    ) -> MonoCalibration:
        """Calibration for a named crystal cut (a key of `CRYSTALS`, e.g. ``"Si(111)"``).

        :raises ValueError: for an unknown crystal name.
        """
        try:
            d = CRYSTALS[crystal]
        except KeyError:
            known = ", ".join(sorted(CRYSTALS))
            raise ValueError(f"unknown crystal {crystal!r}; known: {known}") from None
        return cls(d, counts_per_degree, offset_counts, crystal)

    def energy_to_counts(self, energy_ev: npt.ArrayLike) -> np.ndarray:
        """Encoder counts (int64, rounded to nearest) at energies (eV)."""
        theta = bragg_angle_deg(energy_ev, self.d_spacing)
        return np.rint(self.offset_counts + self.counts_per_degree * theta).astype(np.int64)

    def counts_to_energy(self, counts: npt.ArrayLike) -> np.ndarray:
        """Energies (eV) at encoder counts (the inverse of `energy_to_counts`, before rounding)."""
        c = np.asarray(counts, dtype=np.float64)
        theta = (c - self.offset_counts) / self.counts_per_degree
        return bragg_energy_ev(theta, self.d_spacing)

    def position_list(self, energies_ev: npt.ArrayLike) -> list[int]:
        """The trigger list (encoder counts) for a fly scan through `energies_ev`.

        The list keeps the order of `energies_ev`, and must be strictly monotonic so that each
        preset fires once as the encoder sweeps through them.

        :raises ValueError: if the energies are not strictly monotonic, or if two neighbouring
            energies round to the same count (steps finer than the encoder resolution).
        """
        e = np.asarray(energies_ev, dtype=np.float64)
        if e.ndim != 1 or e.size == 0:
            raise ValueError("need a non-empty 1-D sequence of energies")
        de = np.diff(e)
        if not (np.all(de > 0) or np.all(de < 0)):
            raise ValueError("energies must be strictly increasing or strictly decreasing")
        counts = self.energy_to_counts(e)
        dc = np.diff(counts)
        if not (np.all(dc > 0) or np.all(dc < 0)):
            i = int(np.flatnonzero(dc == 0)[0])
            raise ValueError(
                f"energies {e[i]:.4f} and {e[i + 1]:.4f} eV map to the same encoder count "
                f"{counts[i]}: the step is finer than the encoder resolution"
            )
        return [int(c) for c in counts]
