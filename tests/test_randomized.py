"""helpers.randomized_svd, the device logic of svd, and the exercise checks of notebooks 08 and 09."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import checks
import helpers


def hubble():
    return torch.from_numpy(helpers.to_unit(helpers.sample_image("hubble")))


def rank_k_error(A, d):
    """Frobenius norm of A minus the rank-k matrix U diag(S) Vh held in d."""
    return torch.linalg.norm(A - (d.U * d.S) @ d.Vh).item()


def optimal_error(S, k):
    """Eckart-Young: the best rank-k error in the Frobenius norm is sqrt(sum of the tail sigma^2)."""
    return S[k:].double().pow(2).sum().sqrt().item()


# --- what it returns -----------------------------------------------------------

def test_shapes_dtype_and_device():
    A = hubble()                                        # 872 x 1000
    d = helpers.randomized_svd(A, 30)
    assert isinstance(d, helpers.Decomposition)
    assert d.U.shape == (872, 30) and d.S.shape == (30,) and d.Vh.shape == (30, 1000)
    assert d.S.dtype == torch.float32 and d.U.device.type == "cpu"
    assert d.max_rank == 30 and d.shape == (872, 1000)
    # truncate and reconstruct work on it, up to its own k
    assert helpers.reconstruct(d, 10).shape == (872, 1000)
    with pytest.raises(ValueError, match="1 to 30"):
        helpers.truncate(d, 31)


def test_accepts_numpy_and_keeps_float64():
    A = np.random.default_rng(0).random((40, 25))
    d = helpers.randomized_svd(A, 5)
    assert d.S.dtype == torch.float64


def test_factors_are_orthonormal_and_values_sorted():
    d = helpers.randomized_svd(hubble(), 50)
    eye = torch.eye(50)
    # float32 QR and matrix products of length <= 1000: round-off far below 1e-4
    assert (d.U.T @ d.U - eye).abs().max() < 1e-4
    assert (d.Vh @ d.Vh.T - eye).abs().max() < 1e-4
    assert bool((d.S[:-1] >= d.S[1:]).all()) and bool((d.S >= 0).all())


def test_within_two_percent_of_optimal_with_two_power_iterations():
    A = hubble()
    S = helpers.svd(A).S
    for k in (10, 50, 100):
        ratio = rank_k_error(A, helpers.randomized_svd(A, k)) / optimal_error(S, k)
        assert 1 - 1e-4 <= ratio <= 1.02, (k, ratio)      # cannot beat Eckart-Young; target 2 %


def test_power_iterations_reduce_the_error():
    A = hubble()
    errors = [rank_k_error(A, helpers.randomized_svd(A, 50, power_iters=q)) for q in (0, 1, 2)]
    assert errors[0] > errors[1] > errors[2]


def test_exact_when_the_sketch_covers_the_whole_range():
    A = torch.from_numpy(np.random.default_rng(1).random((30, 20)))
    full = helpers.svd(A)
    d = helpers.randomized_svd(A, 12, oversample=8)  # 12 + 8 = 20 = min(m, n) columns
    # float64 round-off of products of length 30: far below 1e-10 relative
    assert torch.allclose(d.S, full.S[:12], rtol=1e-10, atol=0)


def test_recovers_an_exactly_low_rank_matrix():
    rng = np.random.default_rng(2)
    A = torch.from_numpy(rng.standard_normal((200, 5)) @ rng.standard_normal((5, 150)))
    d = helpers.randomized_svd(A, 5, power_iters=0)
    # the rank-5 range is found exactly: only float64 round-off remains
    assert rank_k_error(A, d) < 1e-9 * torch.linalg.norm(A).item()


def test_seeded_and_agrees_with_torch_svd_lowrank():
    A = hubble()
    a, b = helpers.randomized_svd(A, 20), helpers.randomized_svd(A, 20)
    assert torch.equal(a.S, b.S) and torch.equal(a.U, b.U)
    c = helpers.randomized_svd(A, 20, seed=1)
    assert not torch.equal(a.U, c.U)
    _, S_lowrank, _ = torch.svd_lowrank(A, q=30, niter=2)
    exact = helpers.svd(A).S[:20]
    for S in (a.S, c.S, S_lowrank[:20]):
        # Q^T A is a part of A, so its singular values never exceed A's (float32 round-off: 1e-5)
        assert bool((S <= exact * (1 + 1e-5)).all())
        # sigma_1 = 73 is far above sigma_31 < 10: after 2 power iterations the leading value is
        # off by a factor (10/73)^5 < 1e-4, and float32 round-off adds 1e-5
        assert abs(S[0] - exact[0]) / exact[0] < 2e-4


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(2, 30), st.data())
def test_never_beats_eckart_young(m, n, data):
    k = data.draw(st.integers(1, min(m, n)))
    q = data.draw(st.integers(0, 3))
    A = torch.from_numpy(np.random.default_rng(m * 31 + n).standard_normal((m, n)))
    d = helpers.randomized_svd(A, k, power_iters=q, oversample=data.draw(st.integers(0, 5)))
    S = helpers.svd(A).S
    # float64 round-off on a matrix of norm ~ sqrt(mn) <= 30: far below 1e-9
    assert rank_k_error(A, d) >= optimal_error(S, k) - 1e-9
    assert (d.U.T @ d.U - torch.eye(k)).abs().max() < 1e-9


# --- bad input -------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, 101, -3, 2.5, True, "10", None])
def test_rank_outside_range_is_refused(k):
    A = np.zeros((100, 120), dtype=np.float32)
    with pytest.raises(ValueError, match="1 to 100"):
        helpers.randomized_svd(A, k)


@pytest.mark.parametrize("option", [{"oversample": -1}, {"power_iters": -1}, {"power_iters": 1.5},
                                    {"oversample": True}])
def test_bad_options_are_refused(option):
    name = next(iter(option))
    with pytest.raises(ValueError, match=name):
        helpers.randomized_svd(np.ones((10, 10), dtype=np.float32), 3, **option)


@pytest.mark.parametrize("x, problem", [(np.zeros((4, 4), dtype=np.uint8), "floats"),
                                        (np.zeros(5, dtype=np.float32), "2-D")])
def test_bad_matrix_is_refused(x, problem):
    with pytest.raises(ValueError, match=problem):
        helpers.randomized_svd(x, 1)


# --- device logic (runs without CUDA) ------------------------------------------------

@pytest.mark.parametrize("available, expected", [(True, "cuda"), (False, "cpu")])
def test_compute_device_follows_cuda_availability(monkeypatch, available, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert helpers.compute_device().type == expected


@pytest.mark.parametrize("decompose", [helpers.svd, lambda A: helpers.randomized_svd(A, 5)])
def test_both_decompositions_ask_for_the_device_and_return_cpu_factors(monkeypatch, decompose):
    asked = []

    def cpu_for_the_test():
        asked.append(True)
        return torch.device("cpu")

    monkeypatch.setattr(helpers, "compute_device", cpu_for_the_test)
    d = decompose(torch.rand(20, 16))
    assert asked
    assert {t.device.type for t in d} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here: the GPU path is unverified")
def test_cuda_input_gives_cpu_factors():
    A = hubble().cuda()
    for d in (helpers.svd(A), helpers.randomized_svd(A, 20)):
        assert {t.device.type for t in d} == {"cpu"}
    assert torch.allclose(helpers.svd(A).S[:20], helpers.randomized_svd(A, 20).S, rtol=1e-3)


# --- exercise checks: the solution passes, a wrong answer gets a hint without the answer -----

def test_check_range_basis(capsys):
    A = torch.from_numpy(helpers.to_unit(helpers.sample_image("camera")))       # 512 x 512
    Q, _ = torch.linalg.qr(A @ torch.randn(512, 30, generator=torch.Generator().manual_seed(0)))
    assert checks.check_range_basis(Q, A, k=20)
    assert "✓" in capsys.readouterr().out
    not_orthonormal = A @ torch.randn(512, 30)
    assert not checks.check_range_basis(not_orthonormal, A, k=20)
    assert not checks.check_range_basis(Q[:, :5], A, k=20)
    assert not checks.check_range_basis(None, A, k=20)
    basis_of_noise, _ = torch.linalg.qr(torch.randn(512, 30))    # orthonormal, but not A's range
    assert not checks.check_range_basis(basis_of_noise, A, k=20)
    out = capsys.readouterr().out
    assert "✓" not in out and out.count("\n") == 4


def test_check_power_iters(capsys):
    A = hubble()
    S = helpers.svd(A).S
    best = next(q for q in range(10)
                if rank_k_error(A, helpers.randomized_svd(A, 50, power_iters=q)) <= 1.01 * optimal_error(S, 50))
    assert checks.check_power_iters(best, A, k=50, within=0.01)
    assert "✓" in capsys.readouterr().out
    for wrong in (best - 1, best + 1, None, "2", True):
        assert not checks.check_power_iters(wrong, A, k=50, within=0.01)
    out = capsys.readouterr().out
    assert "✓" not in out and f"power_iters={best} " not in out      # the hints never name the answer


def faces_matrix():
    from skimage import data
    faces = data.lfw_subset()[:100]
    return torch.from_numpy(faces.reshape(100, -1).T.copy())        # 625 pixels x 100 faces


def test_check_explained_variance(capsys):
    X = faces_matrix()
    Xc = X - X.mean(dim=1, keepdim=True)
    S = torch.linalg.svdvals(Xc)
    right = (S[:10] ** 2).sum().item() / (S ** 2).sum().item()
    assert checks.check_explained_variance(right, X, k=10)
    assert checks.check_explained_variance(round(right, 3), X, k=10)
    assert "✓" in capsys.readouterr().out
    S_raw = torch.linalg.svdvals(X)
    wrong = [None, "0.7", 67.6, (S[:10].sum() / S.sum()).item(), 10 / 100,
             ((S_raw[:10] ** 2).sum() / (S_raw ** 2).sum()).item(), right + 0.05]
    for answer in wrong:
        assert not checks.check_explained_variance(answer, X, k=10), answer
    out = capsys.readouterr().out
    assert "✓" not in out and f"{right:.3f}" not in out and f"{right:.1%}" not in out
    assert "Subtract the mean" in out and "square them" in out


def test_check_face_rebuild(capsys):
    X = faces_matrix()
    mean = X.mean(dim=1)
    U = torch.linalg.svd(X - mean[:, None], full_matrices=False).U[:, :20]
    right = mean + U @ (U.T @ (X[:, 7] - mean))
    assert checks.check_face_rebuild(right, X, index=7, k=20)
    assert checks.check_face_rebuild(right.float().reshape(25, 25).numpy(), X, index=7, k=20)
    assert "✓" in capsys.readouterr().out
    wrong = [None, right[:100], right - mean, U @ (U.T @ X[:, 7]), X[:, 7],
             mean + U[:, :10] @ (U[:, :10].T @ (X[:, 7] - mean))]
    for answer in wrong:
        assert not checks.check_face_rebuild(answer, X, index=7, k=20)
    out = capsys.readouterr().out
    assert "✓" not in out and "Add the mean back" in out and "Subtract the mean" in out


# --- the plot helper of notebook 09 ------------------------------------------------

def test_show_signed_images_scales_each_panel_symmetrically():
    import matplotlib.pyplot as plt

    images = [np.array([[2.0, -1.0], [0.0, 0.5]]), torch.tensor([[-3.0, 1.0]]), np.zeros((2, 2))]
    fig = helpers.show_signed_images(images, ["a", "b", "zero"], width=6)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["a", "b", "zero"]
    # white is zero: each panel's colour scale is -max|x| .. +max|x|, and an all-zero one still draws
    assert [ax.images[0].get_clim() for ax in axes] == [(-2.0, 2.0), (-3.0, 3.0), (-1.0, 1.0)]
    assert axes[0].images[0].get_cmap().name == "RdBu_r"
    plt.close(fig)


def test_show_signed_images_needs_one_title_per_image():
    with pytest.raises(ValueError, match="one title per image; got 2 images and 1 titles"):
        helpers.show_signed_images([np.ones((2, 2)), -np.ones((2, 2))], ["only one"])
