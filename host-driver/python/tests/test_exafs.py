"""EXAFS grid and energy ↔ encoder conversion, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flyscan_bluesky import (
    SI111_D_SPACING,
    SI311_D_SPACING,
    MonoCalibration,
    bragg_angle_deg,
    bragg_energy_ev,
    energy_to_k,
    exafs_energy_grid,
    k_to_energy,
)

# Hand calculation, Cu K edge 8979 eV: λ = 12 398.419 843 / 8979 = 1.3808241 Å;
# d(111) = 5.431020511/√3 = 3.1356012 Å, d(311) = 5.431020511/√11 = 1.6375143 Å.
#   Si(111): sin θ = 1.3808241 / (2 · 3.1356012) = 0.2201849 → θ = 12.719894°
#   Si(311): sin θ = 1.3808241 / (2 · 1.6375143) = 0.4216220 → θ = 24.937034°
CU_K = 8979.0
THETA_SI111_CU_K = 12.719894
THETA_SI311_CU_K = 24.937034


def test_d_spacings_follow_the_silicon_lattice():
    assert SI111_D_SPACING == pytest.approx(3.1356012, abs=1e-7)
    assert SI311_D_SPACING == pytest.approx(1.6375143, abs=1e-7)


def test_bragg_angles_match_hand_calculation():
    assert bragg_angle_deg(CU_K, SI111_D_SPACING) == pytest.approx(THETA_SI111_CU_K, abs=1e-4)
    assert bragg_angle_deg(CU_K, SI311_D_SPACING) == pytest.approx(THETA_SI311_CU_K, abs=1e-4)


def test_energy_to_counts_matches_hand_calculation():
    si111 = MonoCalibration.for_crystal("Si(111)", counts_per_degree=10_000.0, offset_counts=500.0)
    # 500 + 10 000 · 12.719894 = 127 698.94 → 127 699
    assert si111.energy_to_counts([CU_K]).tolist() == [127_699]
    si311 = MonoCalibration(SI311_D_SPACING, counts_per_degree=-5_000.0, offset_counts=200_000.0)
    # 200 000 − 5 000 · 24.937034 = 75 314.83 → 75 315
    assert si311.energy_to_counts([CU_K]).tolist() == [75_315]


def test_counts_to_energy_inverts_within_one_count():
    mono = MonoCalibration.for_crystal("Si(311)", counts_per_degree=36_000.0, offset_counts=-1234.0)
    energies = np.linspace(8000.0, 25_000.0, 57)
    back = mono.counts_to_energy(mono.energy_to_counts(energies))
    # Rounding moves θ by at most half a count; convert that to energy via dE/dθ = −E cot θ.
    theta = np.radians(bragg_angle_deg(energies, SI311_D_SPACING))
    tol = energies / np.tan(theta) * np.radians(0.5 / 36_000.0) * 1.001
    assert np.all(np.abs(back - energies) <= tol)
    assert bragg_energy_ev(THETA_SI111_CU_K, SI111_D_SPACING) == pytest.approx(CU_K, abs=0.01)


def test_k_and_energy():
    # E − E0 = k² · 3.809982 eV·Å²: k = 10 Å⁻¹ lies 380.9982 eV above the edge.
    assert k_to_energy(10.0, CU_K) == pytest.approx(CU_K + 380.9982)
    assert energy_to_k(CU_K + 380.9982, CU_K) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="below the edge"):
        energy_to_k(CU_K - 1.0, CU_K)


def test_grid_regions_and_spacing():
    e0 = CU_K
    grid = exafs_energy_grid(e0, pre_start=-200, pre_step=10, xanes_start=-30, xanes_step=0.5,
                             xanes_end=40, k_step=0.05, kmax=14.0)
    assert np.all(np.diff(grid) > 0)
    rel = grid - e0
    pre, xanes, exafs = rel[rel < -30], rel[(rel >= -30) & (rel < 40)], rel[rel >= 40]
    assert pre[0] == pytest.approx(-200) and np.allclose(np.diff(pre), 10)
    assert len(pre) == 17  # −200 … −40
    assert xanes[0] == pytest.approx(-30) and np.allclose(np.diff(xanes), 0.5)
    assert len(xanes) == 140  # −30 … 39.5
    k = np.sqrt(exafs / 3.809982)
    assert k[0] == pytest.approx(math.sqrt(40 / 3.809982))
    assert np.allclose(np.diff(k)[:-1], 0.05)
    assert 0 < np.diff(k)[-1] <= 0.05 + 1e-12
    assert k[-1] == pytest.approx(14.0)
    assert exafs[-1] == pytest.approx(14.0**2 * 3.8099822)


def test_grid_rejects_bad_regions():
    with pytest.raises(ValueError, match="out of order"):
        exafs_energy_grid(CU_K, pre_start=-10, xanes_start=-30)
    with pytest.raises(ValueError, match="k_step"):
        exafs_energy_grid(CU_K, k_step=0)
    with pytest.raises(ValueError, match="kmax"):
        exafs_energy_grid(CU_K, xanes_end=40, kmax=3.0)


def test_position_list_is_monotonic_ints_in_energy_order():
    mono = MonoCalibration.for_crystal("Si(111)", counts_per_degree=50_000.0)
    energies = exafs_energy_grid(CU_K, kmax=12.0)
    positions = mono.position_list(energies)
    assert all(isinstance(p, int) for p in positions)
    assert len(positions) == len(energies)
    # θ falls as energy rises: with positive counts/degree the list runs down.
    assert all(b < a for a, b in zip(positions, positions[1:]))
    assert positions[0] == int(np.rint(50_000.0 * bragg_angle_deg(energies[0], SI111_D_SPACING)))


def test_position_list_refuses_steps_below_encoder_resolution():
    coarse = MonoCalibration.for_crystal("Si(111)", counts_per_degree=10.0)
    with pytest.raises(ValueError, match="same encoder count"):
        coarse.position_list([9000.0, 9000.5, 9001.0])
    with pytest.raises(ValueError, match="strictly"):
        coarse.position_list([9000.0, 9100.0, 9050.0])


def test_energy_below_crystal_cutoff_is_refused():
    # Si(111) cannot diffract below 12 398.419 843 / (2 · 3.1356012) eV = 1977.04 eV.
    with pytest.raises(ValueError, match="1977"):
        bragg_angle_deg(1900.0, SI111_D_SPACING)
    with pytest.raises(ValueError, match="unknown crystal"):
        MonoCalibration.for_crystal("Ge(111)", 1.0)
