"""Method-specific behaviour: small cases whose right answer is known, so a wrong implementation fails."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from confselect.selection import PoolFeatures, make_selector


def descriptors_pool(x) -> PoolFeatures:
    return PoolFeatures(descriptors=np.asarray(x, dtype=np.float64))


# --- trajectory and energy baselines ------------------------------------------------------------


def test_uniform_time_bisects_the_trajectory():
    pool = PoolFeatures(times=np.arange(17) * 5.0)
    order = make_selector("uniform_time").select(pool, 17)
    np.testing.assert_array_equal(order[:9], [0, 16, 8, 4, 12, 2, 6, 10, 14])
    np.testing.assert_array_equal(np.sort(order[:9]), np.arange(0, 17, 2))  # 2^3 + 1 picks: even spacing


def test_uniform_time_follows_times_not_storage_order():
    times = np.array([30.0, 0.0, 10.0, 40.0, 20.0])  # frames stored out of time order, fs
    order = make_selector("uniform_time").select(PoolFeatures(times=times), 3)
    np.testing.assert_array_equal(order, [1, 3, 4])  # 0 fs, 40 fs, 20 fs
    no_times = PoolFeatures(energies=np.zeros(5))
    np.testing.assert_array_equal(make_selector("uniform_time").select(no_times, 3), [0, 4, 2])


def test_uniform_energy_spans_the_range_and_its_cover_tightens():
    rng = np.random.default_rng(1)
    energies = -400.0 + rng.gamma(2.0, 0.5, size=500)  # skewed, sparse high tail, eV
    pool = PoolFeatures(energies=energies)
    order = make_selector("uniform_energy").select(pool, 64)
    assert order[0] == np.argmin(energies) and order[1] == np.argmax(energies)

    def radius(picks):  # largest energy distance from a pool frame to its nearest pick, eV
        return np.abs(energies[:, None] - energies[picks][None, :]).min(axis=1).max()

    radii = np.array([radius(order[:m]) for m in range(2, 65)])
    assert np.all(np.diff(radii) <= 0)
    span = energies.max() - energies.min()
    assert radii[-1] <= span / 63  # as tight as 64 evenly spaced energies would be, despite the skew
    assert radii[-1] < radius(make_selector("random").select(pool, 64)) / 10


def test_atomic_energy_compares_distributions_not_atom_order():
    atomic = np.array(
        [
            [0.0, 0.0, 1.0],  # A
            [1.0, 0.0, 0.0],  # B: A with atoms relabelled, the same local-energy distribution
            [5.0, 5.0, 5.0],  # C: farthest from the mean distribution
            [0.0, 0.0, 0.0],  # D: farthest from C
        ]
    )  # eV
    order = make_selector("atomic_energy").select(PoolFeatures(atomic_energies=atomic), 4)
    np.testing.assert_array_equal(order, [2, 3, 0, 1])


def test_force_selection_is_rotation_invariant_and_starts_at_the_outlier():
    rng = np.random.default_rng(2)
    forces = rng.standard_normal((6, 8, 3))  # eV/A
    forces[4] = 5.0 * forces[4]  # the strongest-force frame
    forces[5] = Rotation.from_euler("xyz", [0.3, 1.1, -0.4]).apply(forces[0].reshape(-1, 3)).reshape(8, 3)
    order = make_selector("force").select(PoolFeatures(forces=forces), 6)
    assert order[0] == 4
    assert order[-1] == 5  # frame 0 rotated: zero distance to frame 0, so last


# --- descriptor-space methods -------------------------------------------------------------------


def test_fps_on_a_line_by_hand():
    # positions 0, 2, 3, 10, 6: mean 4.2, so 10 first; then 0; then 6 (4 from both); then 3; then 2
    order = make_selector("fps").select(descriptors_pool([[0.0], [2.0], [3.0], [10.0], [6.0]]), 5)
    np.testing.assert_array_equal(order, [3, 0, 4, 2, 1])
    line = descriptors_pool(np.arange(10.0)[:, None])
    seeded = make_selector("fps", start="random", seed=4).select(line, 2)
    assert seeded[0] == np.random.default_rng(4).integers(10) and seeded[1] in (0, 9)


def well_separated_mixture(sizes, dimension=4, separation=50.0, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dimension)) * separation
    labels = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[labels] + rng.standard_normal((len(labels), dimension))
    return x, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_takes_one_frame_per_cluster_nearest_its_mean(seed):
    sizes = (40, 30, 20, 10, 5)
    x, labels = well_separated_mixture(sizes)
    order = make_selector("kmeans", seed=seed).select(descriptors_pool(x), 5)
    assert sorted(labels[order]) == [0, 1, 2, 3, 4]
    assert labels[order[0]] == 0  # the largest cluster leads
    for pick in order:
        members = np.flatnonzero(labels == labels[pick])
        distance = np.linalg.norm(x[members] - x[members].mean(axis=0), axis=1)
        assert pick == members[np.argmin(distance)]


@pytest.mark.parametrize(
    "activation, distance",
    [("relu", "euclidean"), ("relu", "cosine"), ("leaky_relu", "euclidean"), ("tanh", "euclidean"),
     ("silu", "euclidean")],
)  # fmt: skip
def test_rnd_first_pick_is_the_largest_target_predictor_distance(activation, distance):
    import torch

    x = np.random.default_rng(5).standard_normal((300, 10))
    selector = make_selector("rnd", seed=3, activation=activation, distance=distance)
    target, predictor = selector.networks(10)
    with torch.no_grad():
        inputs = torch.as_tensor(x, dtype=torch.float32)
        f, g = target(inputs), predictor(inputs)
    if distance == "euclidean":
        score = torch.linalg.vector_norm(f - g, dim=1)
    else:
        score = 1 - torch.nn.functional.cosine_similarity(f, g, dim=1)
    assert selector.select(descriptors_pool(x), 1)[0] == int(torch.argmax(score))
    assert not torch.equal(target[0].weight, predictor[0].weight)  # independent initialisations


def test_rnd_finds_the_rare_cluster_early():
    rng = np.random.default_rng(6)
    bulk = rng.standard_normal((600, 16))
    rare = rng.standard_normal((5, 16)) * 0.3 + 6.0  # 5 frames far from the bulk
    x = np.vstack([bulk[:300], rare, bulk[300:]])
    rare_frames = set(range(300, 305))
    order = make_selector("rnd", seed=0).select(descriptors_pool(x), 8)
    assert rare_frames & set(order[:3].tolist())
    # once seen, the rare cluster is learned: it does not take every later pick
    assert len(rare_frames & set(order.tolist())) < 5


def test_rnd_training_changes_later_picks_and_threads_are_restored():
    import torch

    x = np.random.default_rng(7).standard_normal((200, 8))
    trained = make_selector("rnd", seed=1).select(descriptors_pool(x), 10)
    untrained = make_selector("rnd", seed=1, steps_per_pick=0).select(descriptors_pool(x), 10)
    assert trained[0] == untrained[0] and not np.array_equal(trained, untrained)
    threads = torch.get_num_threads()
    single = make_selector("rnd", seed=1, threads=1).select(descriptors_pool(x), 10)
    assert torch.get_num_threads() == threads
    assert single[0] == trained[0] and len(set(single.tolist())) == 10


def test_rnd_distils_the_picked_frames_below_the_unpicked():
    """RND's defining property: the predictor is trained on the picks, so their target-predictor distance
    drops below what it was when they were picked and stays below the unpicked frames' distance."""
    x = np.random.default_rng(11).standard_normal((300, 8))
    selector = make_selector("rnd", seed=2)
    order = selector.select(descriptors_pool(x), 24)
    picked_mean, picked_max, unpicked_mean = selector.distance_history_.T
    assert len(picked_mean) == len(order) - 1
    assert np.all(picked_mean < unpicked_mean)
    # each picked frame's distance, averaged, falls well below its value at its pick
    running_pick_mean = np.cumsum(selector.pick_distances_)[:-1] / np.arange(1, len(order))
    assert np.all(picked_mean < 0.5 * running_pick_mean)
    # and it stays down: the largest distance of any picked frame never climbs back to the unpicked mean
    assert np.all(picked_max[4:] < unpicked_mean[4:])


def log_det_information(x, rows, lam) -> float:
    """log det(lam I + sum_i x_i x_i^T) over the given rows."""
    return np.linalg.slogdet(lam * np.eye(x.shape[1]) + x[rows].T @ x[rows])[1]


def test_dopt_log_det_rises_with_every_pick_past_d_and_is_greedy():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((60, 4)) * [5.0, 2.0, 1.0, 0.2]
    x[50] = x[10]  # a duplicate
    selector = make_selector("dopt")
    order = selector.select(descriptors_pool(x), 20)  # well past d = 4
    centred = x - x.mean(axis=0)
    lam = selector.regularisation(x)
    log_det = [log_det_information(centred, order[:m], lam) for m in range(21)]
    assert np.all(np.diff(log_det) > 0)
    assert np.linalg.matrix_rank(centred[order[:4]]) == 4  # the first d picks span the space
    for t in range(20):  # each pick is the brute-force best gain
        rest = [i for i in range(60) if i not in order[:t]]
        gains = [log_det_information(centred, np.r_[order[:t], i], lam) for i in rest]
        assert order[t] == rest[int(np.argmax(gains))]


def test_cur_deflation_picks_new_directions():
    rng = np.random.default_rng(9)
    axis = np.repeat([0, 1, 2], [60, 15, 15])  # 60 frames along e1 with large spread, 15 along e2, e3
    amplitude = rng.uniform(-1.0, 1.0, size=90) * np.array([10.0, 3.0, 1.0])[axis]
    x = np.zeros((90, 5))
    x[np.arange(90), axis] = amplitude
    x -= x.mean(axis=0)
    for k in (1, 8):  # k = 1: without deflation every early pick would lie along e1
        order = make_selector("cur", k=k).select(descriptors_pool(x), 3)
        assert sorted(axis[order]) == [0, 1, 2], k
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    leverage = (u[:, s > 1e-9 * s[0]] ** 2).sum(axis=1)
    assert make_selector("cur", k=5).select(descriptors_pool(x), 1)[0] == np.argmax(leverage)


def test_cur_continues_past_the_rank_in_rounds():
    x = np.random.default_rng(10).standard_normal((30, 3))
    order = make_selector("cur").select(descriptors_pool(x), 30)
    np.testing.assert_array_equal(np.sort(order), np.arange(30))
    assert np.linalg.matrix_rank(x[order[:3]] - x.mean(axis=0)) == 3


# --- query by committee -------------------------------------------------------------------------


def test_classical_qbc_queries_the_rare_cluster_after_its_random_start():
    """The committee is fitted on bulk frames only; off that data its members extrapolate apart, so the
    first queried batch reaches the far cluster (random picks would need ~100 draws to find it)."""
    rng = np.random.default_rng(11)
    bulk = rng.standard_normal((600, 8))
    rare = rng.standard_normal((5, 8)) * 0.3 + 5.0
    x = np.vstack([bulk[:300], rare, bulk[300:]])
    energies = x @ rng.standard_normal(8) + 0.1 * rng.standard_normal(len(x))  # eV
    pool = PoolFeatures(descriptors=x, energies=energies)
    rare_frames = set(range(300, 305))
    selector = make_selector("classical_qbc", seed=0, n_initial=4, batch_size=2)
    order = selector.select(pool, 10)
    assert not rare_frames & set(order[:4].tolist())  # the random start missed it ...
    assert rare_frames & set(order[4:6].tolist())  # ... the first query finds it
    # the random start is the seeded permutation's head, and later rounds depend on the committee's training
    np.testing.assert_array_equal(order[:4], np.random.default_rng(0).permutation(len(x))[:4])
    untrained = make_selector("classical_qbc", seed=0, n_initial=4, batch_size=2, steps_per_round=0).select(pool, 10)
    assert not np.array_equal(order, untrained)


def test_classical_qbc_committee_agrees_where_it_was_fitted():
    import torch

    rng = np.random.default_rng(12)
    x = rng.standard_normal((400, 6))
    pool = PoolFeatures(descriptors=x, energies=np.sin(x[:, 0]) + x[:, 1])
    selector = make_selector("classical_qbc", seed=3, n_initial=40, batch_size=1)
    picks = selector.select(pool, 41)
    # refit a committee the way one round does, on the 40 random picks, and compare sigma on and off them
    committee = selector.committee(6)
    optimiser = torch.optim.Adam(committee.parameters(), lr=selector.learning_rate)
    inputs = torch.as_tensor(x[picks[:40]], dtype=torch.float32)
    y = pool.energies[picks[:40]]
    targets = torch.as_tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    for _ in range(300):
        optimiser.zero_grad()
        ((committee(inputs) - targets) ** 2).mean(dim=1).sum().backward()
        optimiser.step()
    sigma = selector.disagreement(committee, torch.as_tensor(x, dtype=torch.float32))
    assert sigma.shape == (400,)
    far = np.linalg.norm(x, axis=1) > np.quantile(np.linalg.norm(x, axis=1), 0.9)
    assert np.median(sigma[picks[:40]]) < np.median(sigma[far])
