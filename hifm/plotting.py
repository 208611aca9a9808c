"""Figures shared by the CLI demo and the experiments (matplotlib, Agg backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["demo_figure"]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def demo_figure(
    images: Sequence[tuple[str, np.ndarray]], history: dict[str, list[float]], path: str | Path
) -> Path:
    """Images side by side (gray or RGB in [0, 1]) and the convergence curves of a solve."""
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.2 * (n + 1), 3.4), constrained_layout=True)
    for ax, (title, img) in zip(axes, images):
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    ax = axes[-1]
    its = np.arange(1, len(history["objective"]) + 1)
    obj = np.asarray(history["objective"])
    if len(obj) > 1:
        ax.semilogy(its[:-1], np.abs(obj[:-1] - obj[-1]) + 1e-16, label="|J(Yⁿ) − J(Y_last)|")
    ax.semilogy(its, history["residual_l"], label="‖∇Y − E‖ (RMS)")
    ax.semilogy(its, np.maximum(history["rel_change"], 1e-16), label="‖Yⁿ − Yⁿ⁻¹‖/‖Yⁿ⁻¹‖")
    ax.set_xlabel("iteration")
    ax.set_ylabel("value (log scale)")
    ax.set_title("convergence")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
