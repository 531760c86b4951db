"""Exercise checks of notebooks 01-06: each passes the right answer (the folded solution's)
and rejects a wrong one with a hint that does not give the answer away.

The folded solutions themselves run in tests/test_notebooks.py, where each ends with
``assert checks.check_...(...)``.
"""

import math

import numpy as np
import pytest
import torch

import checks
import helpers


@pytest.fixture(scope="module")
def camera():
    return helpers.to_unit(helpers.sample_image("camera"))


def verdict(capsys, check, *args, **kwargs):
    """(result, printed text) of one check call."""
    result = check(*args, **kwargs)
    return result, capsys.readouterr().out


def passes(capsys, check, *args, **kwargs):
    result, out = verdict(capsys, check, *args, **kwargs)
    assert result is True and out.startswith("✓"), out


def fails(capsys, check, *args, must_not_say=(), **kwargs):
    result, out = verdict(capsys, check, *args, **kwargs)
    assert result is False and out.strip() and not out.startswith("✓"), out
    for secret in must_not_say:
        assert secret not in out, f"the hint gives the answer away: {out}"
    return out


# --- 03 -------------------------------------------------------------------------

X, Y = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([3.0, 4.0])


def test_rank_one(capsys):
    passes(capsys, checks.check_rank_one, [15.0, 0.0], [1 / 3, 2 / 3, 2 / 3], [3 / 5, 4 / 5], X, Y)
    passes(capsys, checks.check_rank_one, [15, 0], [-1 / 3, -2 / 3, -2 / 3], [-0.6, -0.8], X, Y)
    fails(capsys, checks.check_rank_one, None, None, None, X, Y)
    fails(capsys, checks.check_rank_one, [9.0, 0.0], [1 / 3, 2 / 3, 2 / 3], [0.6, 0.8], X, Y, must_not_say=["15"])
    fails(capsys, checks.check_rank_one, [15.0, 1.0], [1 / 3, 2 / 3, 2 / 3], [0.6, 0.8], X, Y)
    fails(capsys, checks.check_rank_one, [15.0, 0.0], [1, 2, 2], [3, 4], X, Y)
    out = fails(capsys, checks.check_rank_one, [15.0, 0.0], [-1 / 3, -2 / 3, -2 / 3], [0.6, 0.8], X, Y)
    assert "sign" in out


def test_rotation_sigmas(capsys):
    q = torch.tensor([[math.cos(1.0), -math.sin(1.0)], [math.sin(1.0), math.cos(1.0)]])
    passes(capsys, checks.check_rotation_sigmas, torch.linalg.svdvals(q), 1.0)
    fails(capsys, checks.check_rotation_sigmas, None, 1.0)
    fails(capsys, checks.check_rotation_sigmas, [math.sin(1.0), math.cos(1.0)], 1.0, must_not_say=["1.0", "both"])
    fails(capsys, checks.check_rotation_sigmas, [2.0, 0.5], 1.0)


def test_largest_stretch(capsys, camera):
    A = torch.from_numpy(camera)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    sigma_1 = S[0].item()
    stretch_v1 = (A @ Vh[0]).norm().item()
    passes(capsys, checks.check_largest_stretch, 0.6 * sigma_1, stretch_v1, camera)
    fails(capsys, checks.check_largest_stretch, None, stretch_v1, camera)
    fails(capsys, checks.check_largest_stretch, 2 * sigma_1, stretch_v1, camera)        # vectors not unit length
    fails(capsys, checks.check_largest_stretch, 0.6 * sigma_1, (A[:, 0]).norm().item(), camera,
          must_not_say=[f"{sigma_1:.1f}"])                                               # a column, not v_1


def test_frobenius_from_sigmas(capsys, camera):
    S = torch.linalg.svdvals(torch.from_numpy(camera))
    passes(capsys, checks.check_frobenius_from_sigmas, (S.double() ** 2).sum().item(), camera)
    fails(capsys, checks.check_frobenius_from_sigmas, None, camera)
    out = fails(capsys, checks.check_frobenius_from_sigmas, S.sum().item(), camera)
    assert "squared" in out or "square" in out
    fails(capsys, checks.check_frobenius_from_sigmas, (S.double() ** 2).sum().sqrt().item(), camera)
