"""PWSM and the extractors of the ablation (DESIGN §7): equal budgets, sharing, the zero-initialised head."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hifm.anchors import DEFAULT_ANCHOR, anchor  # noqa: E402
from unrolled import DeRUN  # noqa: E402
from unrolled.pwsm import WIDTHS, AnchorHead, PartialSharing, SobelExtractor, make_extractor  # noqa: E402


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_learned_extractors_have_exactly_equal_budgets():
    counts = {k: n_params(make_extractor(k)) for k in ("pwsm", "symmetric", "siamese")}
    assert counts == {"pwsm": 17712, "symmetric": 17712, "siamese": 17712}
    # the closed form 9 · Σ C_in (C_s + 2 C_p)
    for widths in WIDTHS.values():
        c_in, total = 1, 0
        for cs, cp in widths:
            total += 9 * c_in * (cs + 2 * cp)
            c_in = cs + cp
        assert total == 17712
    assert n_params(SobelExtractor()) == 0 and make_extractor("none") is None
    # whole networks differ only by the extractor
    nets = {k: DeRUN(extractor=k).count_parameters() for k in ("pwsm", "symmetric", "siamese")}
    assert len({c["total"] for c in nets.values()}) == 1


def test_output_channels_and_sharing():
    torch.manual_seed(0)
    x = torch.rand(2, 1, 12, 14)
    for kind, c in (("pwsm", 16), ("symmetric", 16), ("siamese", 16), ("sobel", 4)):
        ext = make_extractor(kind)
        out = ext(x, x.flip(-1))
        assert out.shape == (2, 2 * c, 12, 14), kind
    # Siamese: the same weights for both modalities, so swapping the inputs swaps the halves
    sia = make_extractor("siamese")
    a, b = torch.rand(1, 1, 9, 9), torch.rand(1, 1, 9, 9)
    ab, ba = sia(a, b), sia(b, a)
    assert torch.allclose(ab[:, :16], ba[:, 16:]) and torch.allclose(ab[:, 16:], ba[:, :16])
    # PWSM: each layer's weight is [shared; private]: equal shared rows, different private rows
    pw = PartialSharing(WIDTHS["pwsm"])
    for i, (cs, cp) in enumerate(WIDTHS["pwsm"]):
        w_a, w_b = pw.layer_weight(i, "a"), pw.layer_weight(i, "b")
        assert w_a.shape[0] == cs + cp
        assert torch.equal(w_a[:cs], w_b[:cs]) and not torch.equal(w_a[cs:], w_b[cs:])
    # symmetric: nothing shared
    sym = PartialSharing(WIDTHS["symmetric"])
    assert not any(k.startswith("shared") for k in sym.weights)


def test_head_is_zero_at_init_so_the_anchor_is_the_solvers():
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.random((2, 20, 24)))
    b = torch.tensor(rng.random((2, 20, 24)))
    for kind in ("pwsm", "symmetric", "siamese", "sobel", "none"):
        net = DeRUN(stages=2, extractor=kind, dtype=torch.float64)
        m, base = net.learned_anchor(a, b)
        assert torch.equal(m, base), kind
        assert torch.equal(base, anchor(a, b, DEFAULT_ANCHOR))
    head = AnchorHead(8, 4)
    assert float(head.conv2.weight.detach().abs().sum()) == 0
    assert n_params(head) == 9 * (8 * 4 + 4)
    assert all(not hasattr(m, "bias") or m.bias is None for m in DeRUN().modules() if isinstance(m, torch.nn.Conv2d))
