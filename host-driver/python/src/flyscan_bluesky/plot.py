"""The picture of a stored fly scan an XAS user looks at first: normalised μ(E) in
transmission and fluorescence (and the reference), k²χ(k) from Larch's background removal,
and the raw channels as count rates on a secondary panel."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis import Xafs, XasScan

#: Legend names of the μ kinds.
LABELS = {"mu_trans": "transmission ln(I0/It)", "mu_fluor": "fluorescence If/I0",
          "mu_ref": "reference ln(It/Iref)"}


def plot_scan(scan: XasScan, reduced: dict[str, Xafs], path: str | Path,
              title: str | None = None) -> Path:
    """Writes a PNG: normalised μ(E) (top left), k²χ(k) (top right), count rates of every
    channel against energy (bottom). `reduced` holds Larch's results by μ kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = scan.start
    fig = plt.figure(figsize=(12, 8.5), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    ax_mu, ax_chi, ax_raw = (fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
                             fig.add_subplot(grid[1, :]))
    for kind, x in reduced.items():
        label = f"{LABELS.get(kind, kind)}, E0 = {x.e0:.1f} eV"
        ax_mu.plot(x.energy, x.norm, lw=1.2, label=label)
        ax_chi.plot(x.k, x.k**2 * x.chi, lw=1.2, label=LABELS.get(kind, kind))
    if "e0" in s:
        ax_mu.axvline(float(s["e0"]), color="grey", ls=":", lw=1, label=f"E0 = {s['e0']} eV")
    ax_mu.set(xlabel="energy (eV, bin centre)", ylabel="normalised μ(E)",
              title=f"{s.get('element', '?')} {s.get('edge', '')} edge, {s.get('crystal', '')}")
    ax_mu.legend(fontsize=8)
    ax_chi.axhline(0, color="grey", lw=0.5)
    ax_chi.set(xlabel="k (Å⁻¹)", ylabel="k²χ(k) (Å⁻²)", title="EXAFS (Larch autobk)")
    ax_chi.legend(fontsize=8)
    with np.errstate(divide="ignore", invalid="ignore"):
        for key, c in sorted(scan.counts.items()):
            rate = np.where(scan.live_time > 0, c / scan.live_time, np.nan)
            role = scan.roles.get(key)
            ax_raw.plot(scan.energy, rate, lw=0.8, label=f"{key} ({role})" if role else key)
    ax_raw.set(xlabel="energy (eV, bin centre)", ylabel="count rate (1/s)", yscale="log",
               title=f"raw channels: {len(scan)} points (+{scan.partial_points} partial bins "
                     "left out)")
    ax_raw.legend(fontsize=8, ncol=4)
    fig.suptitle(title or f"flyscan run {scan.uid[:8]}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p


__all__ = ["LABELS", "plot_scan"]
