"""Contract of every registered selection method, and the shared distance and coverage kernels."""

import functools

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from confselect.selection import METHODS, PoolFeatures, SelectionError, coverage, make_selector, one_shot_methods
from confselect.selection.coverage import vendi_score
from confselect.selection.distances import farthest_point_order, farthest_point_order_1d, min_distances

N_FRAMES, N_ATOMS, N_PICKS = 40, 6, 12
#: frame -> the frame it copies. Every copy comes *before* its original, so a method that breaks ties by the
#: lowest index meets the copy first: the test below cannot pass by tie-breaking alone.
DUPLICATES = {3: 7, 5: 7, 12: 30, 13: 30}
#: the methods that order a pool (al_qbc labels as it goes and is run by the workflow)
ONE_SHOT = one_shot_methods()


def synthetic_pool(n_frames: int = N_FRAMES, seed: int = 0) -> PoolFeatures:
    """A pool with every field filled and a few exact duplicate frames (same configuration, later time)."""
    rng = np.random.default_rng(seed)
    atomic = -3.0 + 0.1 * rng.standard_normal((n_frames, N_ATOMS))
    forces = rng.standard_normal((n_frames, N_ATOMS, 3))
    descriptors = rng.standard_normal((n_frames, 6))
    for copy, original in DUPLICATES.items():
        if copy < n_frames:
            atomic[copy], forces[copy] = atomic[original], forces[original]
            descriptors[copy] = descriptors[original]
    return PoolFeatures(
        descriptors=descriptors,
        energies=atomic.sum(axis=1),
        atomic_energies=atomic,
        forces=forces,
        times=np.arange(n_frames) * 50.0,
    )


POOL = synthetic_pool()


@functools.lru_cache(maxsize=None)
def selection(method: str, n: int, seed: int = 0) -> tuple:
    """Cached selection on POOL (several tests share the expensive ones)."""
    return tuple(make_selector(method, seed=seed).select(POOL, n))


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_selection_is_ordered_distinct_int64_in_range(method):
    order = make_selector(method, seed=0).select(POOL, N_PICKS)
    assert order.dtype == np.int64 and order.shape == (N_PICKS,)
    assert len(set(order.tolist())) == N_PICKS
    assert order.min() >= 0 and order.max() < N_FRAMES


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_same_seed_same_selection(method):
    first = make_selector(method, seed=5).select(POOL, N_PICKS)
    second = make_selector(method, seed=5).select(POOL, N_PICKS)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_prefixes_are_smaller_selections(method):
    full = np.asarray(selection(method, N_PICKS))
    cls = METHODS[method]
    for m in (1, 5, N_PICKS - 1):
        smaller = np.asarray(selection(method, m))
        if cls.prefix_consistent:
            np.testing.assert_array_equal(smaller, full[:m])
        else:  # documented: k-means with k = m is its own selection, not a prefix of k = n
            assert len(set(smaller.tolist())) == m


def test_only_kmeans_declares_prefixes_inconsistent():
    assert [name for name, cls in METHODS.items() if not cls.prefix_consistent] == ["kmeans"]


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_whole_pool_with_duplicates_is_a_permutation(method):
    order = np.asarray(selection(method, N_FRAMES))
    np.testing.assert_array_equal(np.sort(order), np.arange(N_FRAMES))


@pytest.mark.parametrize("method", ["fps", "atomic_energy", "force", "cur", "dopt", "rnd"])
def test_a_configuration_is_picked_again_only_late(method):
    """A duplicate adds nothing new: once one frame of a group of identical frames is picked (the copy or
    the original, whichever the method meets first), the others wait; for the distance-based methods until
    every distinct frame is picked, for the others at least until several distinct frames are."""
    order = list(selection(method, N_FRAMES))
    groups = {}
    for copy, original in DUPLICATES.items():
        groups.setdefault(original, {original}).add(copy)
    n_distinct = N_FRAMES - sum(len(members) - 1 for members in groups.values())
    later = set()
    for members in groups.values():
        positions = sorted(order.index(frame) for frame in members)
        later.update(order[p] for p in positions[1:])
        # identical frames score identically until the first is picked: picked back to back, a method
        # would not have noticed what it picked (unless no distinct frame was left to take instead)
        assert positions[1] >= min(positions[0] + 5, n_distinct), (method, members, positions)
    if method in ("fps", "atomic_energy", "force"):
        assert set(order[-len(later):]) == later


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_pool_of_identical_frames(method):
    """Every distance and variance is zero: no NaN, no endless loop, every frame once."""
    one = synthetic_pool(n_frames=1)
    pool = PoolFeatures(**{field: np.repeat(getattr(one, field), 9, axis=0) for field in vars(one)})
    with np.errstate(all="raise"):
        order = make_selector(method).select(pool, 9)
    np.testing.assert_array_equal(np.sort(order), np.arange(9))


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_single_pick_and_tiny_pool(method):
    assert make_selector(method, seed=1).select(POOL, 1).shape == (1,)
    tiny = synthetic_pool(n_frames=2, seed=3)
    np.testing.assert_array_equal(np.sort(make_selector(method, seed=1).select(tiny, 2)), [0, 1])


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
@pytest.mark.parametrize("n", [0, -1, N_FRAMES + 1, 2.5, "3", True])
def test_bad_counts_are_refused(method, n):
    with pytest.raises(SelectionError):
        make_selector(method).select(POOL, n)


@pytest.mark.parametrize("method", sorted(ONE_SHOT))
def test_missing_inputs_are_named(method):
    for field in METHODS[method].requires:
        pool = synthetic_pool()
        setattr(pool, field, None)
        with pytest.raises(SelectionError, match=field):
            make_selector(method).select(pool, 3)


def test_declared_inputs():
    assert METHODS["random"].requires == () and METHODS["uniform_time"].requires == ()
    assert METHODS["uniform_energy"].requires == ("energies",)
    assert METHODS["atomic_energy"].requires == ("atomic_energies",)
    assert METHODS["force"].requires == ("forces",)
    for name in ("fps", "kmeans", "cur", "dopt", "rnd"):
        assert METHODS[name].requires == ("descriptors",)
    assert METHODS["classical_qbc"].requires == ("descriptors", "energies")


def test_registry_names_and_knobs():
    assert set(METHODS) == {
        "random", "uniform_time", "uniform_energy", "atomic_energy", "force",
        "fps", "kmeans", "cur", "dopt", "rnd", "classical_qbc", "al_qbc", "full",
    }  # fmt: skip
    assert set(METHODS) - set(ONE_SHOT) == {"al_qbc"}
    with pytest.raises(SelectionError, match="active-learning rules"):
        make_selector("al_qbc").select(POOL, 3)
    assert make_selector("rnd", seed=2, hidden=(8,), steps_per_pick=3).hidden == (8,)
    assert make_selector("kmeans", max_iter=7).max_iter == 7
    with pytest.raises(SelectionError, match="known"):
        make_selector("bogus")
    with pytest.raises(TypeError):
        make_selector("fps", no_such_knob=1)
    with pytest.raises(SelectionError):
        make_selector("fps", start="middle")
    with pytest.raises(SelectionError):
        make_selector("rnd", distance="cosine_similarity")


def test_the_full_arm_orders_every_pool_frame():
    picks = make_selector("full", seed=3).select(POOL, N_FRAMES)
    assert sorted(picks.tolist()) == list(range(N_FRAMES))
    assert picks.tolist() != list(range(N_FRAMES))  # a seeded order: prefixes are random subsets


def test_seed_changes_the_seeded_methods_only():
    for method in ("random", "rnd", "classical_qbc", "full"):
        assert selection(method, N_PICKS, 0) != selection(method, N_PICKS, 1), method
    for method in ("uniform_time", "uniform_energy", "fps", "cur", "dopt", "atomic_energy", "force"):
        assert selection(method, N_PICKS, 0) == selection(method, N_PICKS, 1), method


def test_no_global_random_state_is_touched():
    import torch

    numpy_state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state().clone()
    for method in ONE_SHOT:
        make_selector(method, seed=9).select(POOL, 4)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)


# --- shared kernels -----------------------------------------------------------------------------


def brute_force_fps_radii(x, order):
    """Distance of each pick to its nearest earlier pick, and the largest such distance available then."""
    chosen, achieved, best = [order[0]], [], []
    for pick in order[1:]:
        d = cdist(x, x[chosen]).min(axis=1)
        d[chosen] = -1.0
        achieved.append(d[pick])
        best.append(d.max())
        chosen.append(pick)
    return np.array(achieved), np.array(best)


def test_fps_large_pool_path_is_exact_farthest_point():
    """The look-ahead path (pools above EXACT_ELEMENTS) must still pick the true farthest frame each time."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9000, 128))  # 1.15e6 entries: the large-pool path
    order = farthest_point_order(x, 30, first=11)
    assert order[0] == 11 and len(set(order.tolist())) == 30
    achieved, best = brute_force_fps_radii(x, order)
    np.testing.assert_allclose(achieved, best, rtol=1e-9)
    assert np.all(np.diff(achieved) <= 1e-9)  # FPS radii never grow


def test_fps_1d_matches_brute_force_and_starts_at_the_minimum():
    rng = np.random.default_rng(5)
    values = np.round(rng.exponential(size=200), 2)  # many ties
    order = farthest_point_order_1d(values, 60)
    assert order[0] == np.argmin(values) and values[order[1]] == values.max()
    achieved, best = brute_force_fps_radii(values[:, None], order)
    np.testing.assert_allclose(achieved, best, atol=1e-12)


def test_fps_1d_bisects_an_even_grid():
    np.testing.assert_array_equal(farthest_point_order_1d(np.arange(9.0), 9), [0, 8, 4, 2, 6, 1, 3, 5, 7])


def test_min_distances_match_cdist_in_any_chunking():
    rng = np.random.default_rng(6)
    x, c = rng.standard_normal((300, 7)) + 50.0, rng.standard_normal((13, 7)) + 50.0
    exact = cdist(x, c)
    for chunk in (13, 100, 10**6):
        dist, nearest = min_distances(x, c, chunk_elements=chunk)
        np.testing.assert_allclose(dist, exact.min(axis=1), rtol=1e-10)
        np.testing.assert_array_equal(nearest, exact.argmin(axis=1))


def test_coverage_against_brute_force():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((250, 5)).astype(np.float32)
    picks = np.array([3, 17, 99, 120, 200])
    result = coverage(x, picks, length_scale=1.5)
    d = cdist(x.astype(np.float64), x[picks].astype(np.float64)).min(axis=1)
    assert result["max_min_distance"] == pytest.approx(d.max(), rel=1e-6)
    assert result["mean_min_distance"] == pytest.approx(d.mean(), rel=1e-6)
    kernel = np.exp(-cdist(x[picks], x[picks], "sqeuclidean") / (2 * 1.5**2)) / len(picks)
    eig = np.linalg.eigvalsh(kernel)
    eig = eig[eig > 1e-12]
    assert result["vendi_score"] == pytest.approx(np.exp(-(eig * np.log(eig)).sum()), rel=1e-9)
    assert result["n_selected"] == 5 and result["length_scale"] == 1.5
    assert coverage(x, np.arange(250))["max_min_distance"] == pytest.approx(0.0, abs=1e-3)


def test_vendi_score_counts_distinct_frames():
    far = np.eye(4) * 100.0
    assert vendi_score(far, 1.0) == pytest.approx(4.0)
    assert vendi_score(np.repeat(far[:1], 5, axis=0), 1.0) == pytest.approx(1.0)
    assert vendi_score(np.vstack([far, far[:1]]), 1.0) == pytest.approx(
        np.exp(-(0.4 * np.log(0.4) + 3 * 0.2 * np.log(0.2)))  # one frame twice: weights 2/5, 1/5 x 3
    )


def test_fps_covers_better_than_random():
    rng = np.random.default_rng(8)
    x = np.vstack([rng.standard_normal((400, 8)), rng.standard_normal((20, 8)) + 6.0])
    pool = PoolFeatures(descriptors=x)
    fps = coverage(x, make_selector("fps").select(pool, 20), length_scale=3.0)
    rand = coverage(x, make_selector("random").select(pool, 20), length_scale=3.0)
    assert fps["max_min_distance"] < rand["max_min_distance"]
    assert fps["vendi_score"] > rand["vendi_score"]


def test_quests_entropy_grows_with_new_environments_and_ignores_duplicates():
    """QUESTS's dataset entropy is that of the distribution of environments: a copy of a frame adds
    nothing, a differently distorted frame adds entropy; the diversity counts distinct environments."""
    from ase.build import bulk

    from confselect.dataset_entropy import quests_metrics

    base = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    frames = []
    for seed, amplitude in ((0, 0.05), (1, 0.3), (2, 0.6)):
        atoms = base.copy()
        atoms.rattle(amplitude, seed=seed)
        frames.append(atoms)
    settings = {"k": 32, "cutoff_A": 5.0, "bandwidth_1_A": 0.015}
    distinct = quests_metrics(frames, [1, 2, 3], **settings)
    copies = quests_metrics([frames[0], frames[0].copy(), frames[0].copy()], [1, 3], **settings)
    h = [distinct[n]["quests_entropy_nats"] for n in (1, 2, 3)]
    assert h[0] < h[1] < h[2]
    assert copies[3]["quests_entropy_nats"] == pytest.approx(copies[1]["quests_entropy_nats"], abs=1e-9)
    assert distinct[3]["quests_diversity"] > 1.5 * copies[3]["quests_diversity"]
