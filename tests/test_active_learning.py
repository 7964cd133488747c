"""Query-by-committee active learning (al_qbc): schedule, committee disagreement, calibration, exploration
and its faults. The committee test trains real SchNet members; the exploration tests drive ASE's EMT and
Lennard-Jones calculators as committee members (fast, and their disagreement is known)."""

import math

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from confselect.active_learning import run_iteration, skipped_iteration
from confselect.committee import (CommitteeCalculator, calibrate, committee_errors, disagreement, member_seed,
                                  member_training_indices, predict)
from confselect.exploration import explore_md
from confselect.selection import SelectionError, make_selector
from confselect.selection.al_qbc import Iteration
from confselect.config import SCHEMA, section_defaults
from confselect.stability import StabilityThresholds

LIMITS = StabilityThresholds.from_config(section_defaults(SCHEMA, "validation", "stability"))


@pytest.mark.parametrize("sizes, knobs", [
    ([8, 16, 32, 64, 256], {}),
    ([4, 8], {"n_initial": 2, "n_calibration": 2, "frames_per_iteration": 2}),
    ([10, 13, 40, 41], {"n_initial": 3, "n_calibration": 4, "frames_per_iteration": 5}),
    ([5, 6, 7], {"n_initial": 5, "n_calibration": 0, "threshold_eV": 0.01}),
])  # fmt: skip
def test_the_schedule_spends_every_budget_and_never_more(sizes, knobs):
    al = make_selector("al_qbc", **knobs)
    schedule = al.schedule(sizes)
    assert [it.index for it in schedule] == list(range(1, len(schedule) + 1))
    assert schedule[0].budget_before == al.start_budget
    for before, after in zip(schedule, schedule[1:]):
        assert after.budget_before == before.budget_after
    for it in schedule:
        assert 1 <= it.max_picks <= (knobs.get("frames_per_iteration") or math.inf)
    for n in al.model_sizes(sizes):
        iterations = al.iterations_up_to(sizes, n)
        labels = al.start_budget + sum(it.max_picks for it in iterations)
        assert labels == n  # the budget is spent exactly, never exceeded
    assert al.model_sizes(sizes) == [n for n in sorted(sizes) if n >= al.start_budget]


def test_knobs_are_checked_naming_the_knob():
    for knobs, match in (({"committee_size": 1}, "committee_size"), ({"explore": "dft"}, "explore"),
                         ({"criterion": "stress"}, "criterion"), ({"flagged_fraction": 1.5}, "flagged_fraction"),
                         ({"n_calibration": 0}, "threshold_eV"), ({"temperature_range_K": [900, 300]},
                                                                  "temperature_range_K")):
        with pytest.raises(SelectionError, match=match):
            make_selector("al_qbc", **knobs)


def test_each_frame_is_held_out_by_exactly_one_member():
    members = member_training_indices(23, 5, seed=4)
    held_out = [sorted(set(range(23)) - set(rows.tolist())) for rows in members]
    assert sorted(i for fold in held_out for i in fold) == list(range(23))
    assert all(4 <= len(fold) <= 5 for fold in held_out)
    assert member_training_indices(23, 5, seed=4)[2].tolist() == members[2].tolist()
    assert member_training_indices(3, 5, seed=0)[4].tolist() in ([0, 1, 2], [0, 1], [0, 2], [1, 2])
    assert len({member_seed(0, k) for k in range(5)}) == 5


def test_disagreement_and_errors_by_hand():
    energies = np.array([[1.0, 5.0], [3.0, 5.0]])  # two members, two frames
    forces = [np.array([[[1.0, 0, 0], [0, 0, 0]], [[-1.0, 0, 0], [0, 0, 0]]]), np.zeros((2, 2, 3))]
    spread = disagreement(energies, forces, [4, 2])
    np.testing.assert_allclose(spread["rho_eV"], [1.0 / 2.0, 0.0])  # std 1 over sqrt(4) atoms
    np.testing.assert_allclose(spread["force_disagreement_max_eV_A"], [1.0, 0.0])
    np.testing.assert_allclose(spread["force_disagreement_mean_eV_A"], [0.5, 0.0])
    errors = committee_errors(energies, forces, [2.5, 4.0], [np.zeros((2, 3)), np.ones((2, 3))], [4, 2])
    np.testing.assert_allclose(errors["energy_error_eV"], [1.5 / 2.0, 1.0 / math.sqrt(2)])  # max over members
    np.testing.assert_allclose(errors["force_error_max_eV_A"], [0.0, math.sqrt(3)])
    spread = disagreement(np.array([[1.0], [np.nan]]), [np.full((2, 1, 3), np.nan)], [1])
    assert np.isnan(spread["rho_eV"][0]) and np.isnan(spread["force_disagreement_max_eV_A"][0])


def test_calibration_recovers_a_known_threshold():
    """Errors above the limit exactly where the disagreement is above 0.6: flagging every bad frame puts the
    threshold between the largest good and the smallest bad value; flagging half of them at the bad values'
    median; noise in the errors lowers the correlation but not below a clear positive."""
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 1, 400)
    errors = np.where(values > 0.6, 1.0, 0.1) + 0.01 * rng.standard_normal(400)
    result = calibrate(values, errors, error_limit=0.5, flagged_fraction=1.0)
    assert values[values <= 0.6].max() < result["threshold"] < values[values > 0.6].min()
    assert result["recall"] == 1.0 and result["n_bad"] == int((values > 0.6).sum())
    assert result["flagged"] == pytest.approx((values > 0.6).mean())
    assert result["rms_error_flagged"] > 5 * result["rms_error_unflagged"]
    half = calibrate(values, errors, error_limit=0.5, flagged_fraction=0.5)
    assert half["threshold"] == pytest.approx(np.median(values[values > 0.6]), abs=0.01)
    assert 0.5 <= half["recall"] < 0.52
    curve = result["curve"]
    assert np.all(np.diff(curve["recall"]) <= 0) and np.all(np.diff(curve["flagged"]) <= 0)
    noisy = calibrate(values, values + 0.3 * rng.standard_normal(400), 0.8, 0.9)
    assert 0.5 < noisy["spearman"] < result["spearman"] <= 1.0


def test_calibration_without_bad_frames_or_finite_values_says_why():
    none_bad = calibrate([0.1, 0.3, 0.2], [0.01, 0.02, 0.03], error_limit=1.0, flagged_fraction=0.9)
    assert none_bad["threshold"] == 0.3 and "no calibration frame has an error above" in none_bad["reason"]
    broken = calibrate([np.nan, np.nan], [1.0, np.inf], error_limit=0.5, flagged_fraction=0.9)
    assert math.isnan(broken["threshold"]) and broken["n_nonfinite"] == 2 and broken["reason"]


def _cu(seed=0, rattle=0.05):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    atoms.rattle(rattle, seed=seed)
    return atoms


def test_committee_mean_calculator_averages_its_members():
    members = [EMT(), LennardJones(sigma=2.3, epsilon=0.4, rc=5.0, smooth=True)]
    atoms = _cu()
    atoms.calc = CommitteeCalculator(members)
    energies, forces = predict(members, [_cu()])
    assert atoms.get_potential_energy() == pytest.approx(energies[:, 0].mean())
    np.testing.assert_allclose(atoms.get_forces(), forces[0].mean(axis=0))
    assert atoms.calc.results["rho_eV"] == pytest.approx(energies[:, 0].std() / math.sqrt(len(atoms)))


def test_committee_disagrees_more_far_from_its_training_frames(tmp_path):
    """Real SchNet members on EMT labels of slightly rattled Cu: their disagreement on their own training
    frames is lower than on strongly rattled (far) frames."""
    from confselect.training import SchNetTrainer

    def labelled(seed, rattle):
        atoms = _cu(seed, rattle)
        atoms.calc = EMT()
        atoms.get_forces()
        return atoms

    frames = [labelled(s, 0.05) for s in range(8)]
    far = [labelled(100 + s, 0.35) for s in range(8)]
    members = []
    for k, rows in enumerate(member_training_indices(len(frames), 3, seed=0)):
        trainer = SchNetTrainer(n_atom_basis=16, n_interactions=1, n_rbf=10, cutoff_A=4.0, max_epochs=100,
                                max_steps=200, batch_size=2, seed=member_seed(0, k), repulsion="none")
        members.append(trainer.fit([frames[i] for i in rows], tmp_path / f"member{k}"))
    from confselect.calculator import SchNetCalculator

    calculators = [SchNetCalculator(m, cutoff_A=4.0) for m in members]
    near = disagreement(*predict(calculators, frames), [len(a) for a in frames])
    away = disagreement(*predict(calculators, far), [len(a) for a in far])
    for key in ("force_disagreement_mean_eV_A", "force_disagreement_max_eV_A"):
        assert np.median(near[key]) < np.median(away[key]), key
    assert np.mean(near["force_disagreement_mean_eV_A"]) < 0.5 * np.mean(away["force_disagreement_mean_eV_A"])


class Broken(Calculator):
    """A member that returns NaN once the configuration has moved from its start (a model far outside its data)."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, start):
        super().__init__()
        self.start = start.get_positions().copy()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        moved = np.abs(self.atoms.get_positions() - self.start).max() > 0.02
        value = np.nan if moved else 0.0
        self.results = {"energy": value, "free_energy": value, "forces": np.full((len(self.atoms), 3), value)}


class Collapse(Calculator):
    """A member that pulls every atom to the cell's centre with a spring of ``k`` (eV/A^2): a model whose
    dynamics collapses the configuration, as an untrained one far from its data can."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, k):
        super().__init__()
        self.k = k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.get_positions() - self.atoms.cell.sum(axis=0) / 2
        energy = 0.5 * self.k * float((d**2).sum())
        self.results = {"energy": energy, "free_energy": energy, "forces": -self.k * d}


def _explore(members, threshold, **kwargs):
    committee = CommitteeCalculator(members)
    settings = dict(duration_fs=200.0, timestep_fs=2.0, check_interval_fs=10.0, limits=LIMITS, seed=0,
                    log=lambda text: None)
    settings.update(kwargs)
    starts = [("a", _cu(1)), ("b", _cu(2))]
    return explore_md(committee, starts, [600.0, 900.0], threshold, "rho_eV", **settings)


def test_trajectories_stop_at_their_first_uncertain_frame():
    members = [EMT(), LennardJones(sigma=2.3, epsilon=0.4, rc=5.0, smooth=True)]
    records, candidates, checked = _explore(members, threshold=0.0)  # every checked frame is uncertain
    assert [r["uncertain"] for r in records] == [True, True] and checked == 2
    assert [r["time_fs"] for r in records] == [10.0, 10.0]  # the first check after the start
    assert all(r["stop_reason"].startswith("uncertain") for r in records)
    assert all(c.calc is None and c.info["rho_eV"] > 0 and c.info["force_disagreement_max_eV_A"] >= c.info[
        "force_disagreement_mean_eV_A"] > 0 for c in candidates)  # every measure recorded
    records, candidates, checked = _explore(members, threshold=1e6)  # nothing is uncertain
    assert not candidates and checked == 2 * 20 and all(r["time_fs"] == 200.0 for r in records)


def test_a_nan_disagreement_and_an_explosion_are_recorded_not_raised():
    start = _cu(1)
    records, candidates, _ = _explore([EMT(), Broken(start)], threshold=0.0)
    assert not candidates
    # the NaN member makes the committee mean non-finite: run_md's check ends the run, no frame is picked
    assert all(r["stop_reason"] == "non-finite values" and not r["uncertain"] for r in records)
    # a committee whose dynamics collapses the cell: the closest-approach check ends each run on the way
    records, candidates, _ = _explore([Collapse(1.0), Collapse(1.1)], threshold=1e6, duration_fs=2000.0)
    assert not candidates and all(not r["uncertain"] for r in records)
    assert all(r["stop_reason"] == "atoms too close" and 0 < r["time_fs"] < 2000.0 for r in records)


def test_an_iteration_without_uncertain_frames_stops_the_loop_with_its_reason():
    al = make_selector("al_qbc", n_initial=2, n_calibration=0, threshold_eV=1e6, duration_fs=100.0,
                       check_interval_fs=10.0)
    members = [EMT(), LennardJones(sigma=2.3, epsilon=0.4, rc=5.0, smooth=True)]
    iteration = Iteration(1, 2, 4)
    record, picks = run_iteration(al, iteration, members, CommitteeCalculator(members), [], [_cu(3), _cu(4)],
                                  set(), LIMITS, [500.0, 900.0], log=lambda text: None)
    assert picks == [] and record["stopped"] and record["stop_reason"].startswith("no uncertain frame among")
    later = skipped_iteration(Iteration(2, 4, 6), record)
    assert later["skipped"] and later["stopped_at"] == 1 and later["stop_reason"] == record["stop_reason"]
    # pool ranking instead of MD: the most uncertain unlabelled pool frames, labelled ones left out
    al = make_selector("al_qbc", n_initial=2, n_calibration=0, threshold_eV=0.0, explore="pool")
    pool = [_cu(s, 0.02 * (1 + s)) for s in range(6)][::-1]  # the members disagree most on the last frames
    record, picks = run_iteration(al, iteration, members, CommitteeCalculator(members), [], pool, {5}, LIMITS,
                                  [500.0, 900.0])
    values = disagreement(*predict(members, pool[:5]), [len(a) for a in pool[:5]])["rho_eV"]
    assert [p.info["pool_index"] for p in picks] == list(np.argsort(-values)[:2]) != [0, 1]
    assert record["n_checked"] == 5 and not record["stopped"]


def test_failed_labels_count_as_paid_and_are_not_trained_on(tmp_path):
    """A label that fails (a failure record in the label batch) is left out of training and of calibration
    but counted in the AL arm's labels: the loop pays for it."""
    from ase.io import write

    from confselect.active_learning import al_labels
    from confselect.labelling import LabelFailure, failure_record

    def labelled(seed):
        atoms = _cu(seed)
        atoms.calc = EMT()
        atoms.get_forces()
        atoms.info["label_wall_time_s"] = 1.0
        return atoms

    seed_file, picks_file = tmp_path / "batch0.extxyz", tmp_path / "picks0.extxyz"
    # seed set (2), calibration set (2), and a frame beyond them that the batch also holds
    write(seed_file, [labelled(0), failure_record(_cu(1), "emt", LabelFailure("SCF did not converge")),
                      labelled(2), failure_record(_cu(3), "emt", LabelFailure("SCF did not converge")),
                      labelled(4)], format="extxyz")
    write(picks_file, [labelled(5), failure_record(_cu(6), "emt", LabelFailure("timeout", transient=True))],
          format="extxyz")
    labels = al_labels([seed_file], [picks_file], n_initial=2, n_calibration=2)
    assert len(labels.train) == 2 and len(labels.train_failed) == 2  # frame 0 and the first pick; 1 and 6 failed
    assert len(labels.calibration) == 1 and len(labels.calibration_failed) == 1
    assert labels.n_labels == 2 + 2 + 2 and labels.n_picks == [2]
    assert all(a.calc is not None for a in labels.train + labels.calibration)
