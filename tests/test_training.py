"""The SchNet trainer: the half-list forward is SchNetPack's function, the budget scales with n, it learns."""

import math

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from confselect.schnet_halflist import HalfListSchNet, fixed_repulsion, unsupported
from confselect.training import SchNetTrainer, build_model
from confselect.training_data import InMemoryDataset

CUTOFF_A = 5.0


def labelled(atoms):
    """A copy with Lennard-Jones energy and forces stored (a cheap teacher for training mechanics)."""
    atoms = atoms.copy()
    calc = LennardJones(sigma=2.8, epsilon=0.05, rc=6.0, smooth=True)
    atoms.calc = calc
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def salt_frames(n, seed, repeat=2, lattice_A=5.64, amplitude_A=0.15):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = bulk("NaCl", "rocksalt", a=lattice_A * rng.uniform(0.97, 1.05), cubic=True).repeat(repeat)
        atoms.positions += rng.normal(0.0, amplitude_A, atoms.positions.shape)
        frames.append(labelled(atoms))
    return frames


def schnetpack_prediction(model, atoms):
    """Energy and forces of ``model`` on ``atoms`` through SchNetPack's own converter and neighbour list."""
    import schnetpack.transform as trn
    from schnetpack.interfaces import AtomsConverter

    converter = AtomsConverter(neighbor_list=trn.MatScipyNeighborList(cutoff=CUTOFF_A), dtype=torch.float32)
    out = model(converter(atoms))
    return out["energy"].detach().double().numpy(), out["forces"].detach().double().numpy()


@pytest.mark.parametrize("repulsion", ["none", "zbl"])
@pytest.mark.parametrize("repeat", [1, 2], ids=["8-atom cell (periodic self-images)", "64-atom cell"])
def test_half_list_energy_and_forces_equal_schnetpacks_forward(repulsion, repeat):
    frames = salt_frames(3, seed=1, repeat=repeat)
    torch.manual_seed(3)
    model = build_model(16, 2, 12, CUTOFF_A, -1.0, repulsion=repulsion).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    network = HalfListSchNet(model)
    data = InMemoryDataset(frames, CUTOFF_A, mean_energy_per_atom=-1.0, full_list=False,
                           baseline=lambda inputs: fixed_repulsion(model, inputs), pair_features=network.pair_features)
    inputs, targets = data.batch(range(len(frames)))
    energy, forces = network(inputs)
    # the network term plus the subtracted fixed term, back on the scale of the labels
    fixed_e = np.array([a.get_potential_energy() + len(a) for a in frames]) - targets["energy"].double().numpy()
    fixed_f = np.concatenate([a.get_forces() for a in frames]) - targets["forces"].double().numpy()
    ref = [schnetpack_prediction(model, a) for a in frames]
    ref_e = np.concatenate([e for e, _ in ref])
    ref_f = np.concatenate([f for _, f in ref])
    mean_offset = np.array([-1.0 * len(a) for a in frames])  # AddOffsets of the model's postprocessing
    assert np.allclose(energy.detach().double().numpy() + fixed_e + mean_offset, ref_e, atol=2e-4, rtol=1e-6)
    assert np.abs(forces.detach().double().numpy() + fixed_f - ref_f).max() < 2e-5 * max(1.0, np.abs(ref_f).max())
    if repulsion == "none":
        assert np.abs(fixed_f).max() < 1e-6  # float32 rounding of the stored labels only
    else:
        assert np.abs(fixed_f).max() > 1e-3  # the ZBL forces are really there and really subtracted


@pytest.mark.parametrize("activation", ["default", "silu filters"])
def test_training_gradients_equal_autograds_double_backward_through_schnetpacks_forward(activation):
    """The explicit reverse pass gives the loss the same parameter gradients as SchNetPack's forward with
    autograd forces (create_graph) on the full list: the trainer optimises the same objective."""
    import torch.nn.functional as F

    frames = salt_frames(3, seed=4, repeat=2)
    torch.manual_seed(5)
    model = build_model(16, 2, 12, CUTOFF_A, -1.0).train()
    if activation == "silu filters":  # a second activation through every block: the derivative table is used
        for interaction in model.representation.interactions:
            interaction.filter_network[0].activation = F.silu
            interaction.f2out[0].activation = F.silu
    model.do_postprocessing = False
    network = HalfListSchNet(model)
    half = InMemoryDataset(frames, CUTOFF_A, -1.0, full_list=False, pair_features=network.pair_features)
    full = InMemoryDataset(frames, CUTOFF_A, -1.0, full_list=True)

    def gradients(energy, forces, targets):
        loss = 0.05 * F.mse_loss(energy, targets["energy"]) + 0.95 * F.mse_loss(forces, targets["forces"])
        return torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)

    inputs, targets = half.batch(range(3))
    ours = gradients(*network(inputs), targets)
    inputs, targets = full.batch(range(3))
    out = model(inputs)
    reference = gradients(out["energy"], out["forces"], targets)
    compared = 0
    for name, a, b in zip([n for n, _ in model.named_parameters()], ours, reference):
        if b is None:
            continue
        scale = float(b.abs().max())
        assert a is not None and float((a - b).abs().max()) <= 1e-4 * scale + 1e-7, name
        compared += scale > 0
    assert compared >= 10  # filters, updates, embedding and output net all have non-zero gradients


def test_unsupported_names_an_activation_without_a_derivative():
    model = build_model(8, 1, 6, CUTOFF_A, 0.0)
    model.representation.interactions[0].f2out[0].activation = torch.tanh
    assert "tanh" in unsupported(model)
    with pytest.raises(ValueError, match="tanh"):
        HalfListSchNet(model)


def test_half_list_has_each_pair_once():
    (atoms,) = salt_frames(1, seed=2, repeat=2)
    full = InMemoryDataset([atoms], CUTOFF_A, 0.0, full_list=True).frames[0]
    half = InMemoryDataset([atoms], CUTOFF_A, 0.0, full_list=False).frames[0]
    assert len(full.idx_i) == 2 * len(half.idx_i) > 0
    d_full = np.sort(np.linalg.norm(full.positions[full.idx_j] - full.positions[full.idx_i] + full.offsets, axis=1))
    d_half = np.sort(np.linalg.norm(half.positions[half.idx_j] - half.positions[half.idx_i] + half.offsets, axis=1))
    assert np.allclose(d_full[::2], d_half, atol=1e-5) and d_full.max() < CUTOFF_A


def test_unsupported_names_what_is_missing():
    import schnetpack as spk

    model = build_model(8, 1, 6, CUTOFF_A, 0.0)
    assert unsupported(model) == ""
    model.representation = spk.representation.PaiNN(8, 1, spk.nn.GaussianRBF(6, CUTOFF_A), spk.nn.CosineCutoff(CUTOFF_A))
    assert "PaiNN" in unsupported(model)


def test_step_budget_scales_with_the_set_and_the_rate_decays_to_its_floor():
    trainer = SchNetTrainer(max_epochs=600, max_steps=6000, batch_size=4, learning_rate=5e-3,
                            final_learning_rate_fraction=0.01)
    assert trainer.n_steps(8) == 1200
    assert trainer.n_steps(30) == 600 * 8
    assert trainer.n_steps(32) == 4800
    assert trainer.n_steps(512) == 6000  # large sets: the step cap, fewer epochs
    n = trainer.n_steps(32)
    rates = np.array([trainer.learning_rate_at(k, n) for k in range(n)])
    assert rates[0] == pytest.approx(5e-3) and rates[-1] == pytest.approx(5e-5)
    assert np.all(np.diff(rates) <= 0)
    assert rates[n // 2] == pytest.approx(0.5 * (5e-3 + 5e-5), rel=1e-3)


def force_rmse(model, frames):
    errors = [schnetpack_prediction(model, a)[1] - a.get_forces() for a in frames]
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def test_fit_learns_the_teacher_and_records_its_budget(tmp_path):
    train, test = salt_frames(8, seed=4, repeat=1), salt_frames(6, seed=5, repeat=1)
    settings = dict(n_atom_basis=16, n_interactions=2, n_rbf=12, cutoff_A=CUTOFF_A, max_epochs=150, max_steps=400,
                    batch_size=4, learning_rate=5e-3, repulsion="none", seed=0)
    trainer = SchNetTrainer(**settings)
    torch.manual_seed(0)
    mean = float(np.mean([a.get_potential_energy() / len(a) for a in train]))
    before = force_rmse(build_model(16, 2, 12, CUTOFF_A, mean, repulsion="none").eval(), test)
    model = trainer.fit(train, tmp_path / "model")
    after = force_rmse(model, test)
    assert after < 0.5 * before, (before, after)
    record = trainer.record
    assert record["steps"] == min(150 * math.ceil(8 / 4), 400) == 300
    assert record["epochs"] == pytest.approx(300 * 4 / 8)
    assert record["train_time_s"] > 0 and math.isfinite(record["final_loss"])
    assert record["final_forces_mse_eV2_A2"] < before**2
    saved = torch.load(tmp_path / "model" / "model.pt", weights_only=False)
    assert force_rmse(saved, test) == pytest.approx(after, rel=1e-6)


def test_fit_is_reproducible_for_a_seed_and_differs_between_seeds(tmp_path):
    frames = salt_frames(4, seed=6, repeat=1)
    settings = dict(n_atom_basis=8, n_interactions=1, n_rbf=8, cutoff_A=CUTOFF_A, max_epochs=10, batch_size=2)
    a = SchNetTrainer(**settings, seed=1).fit(frames, tmp_path / "a")
    b = SchNetTrainer(**settings, seed=1).fit(frames, tmp_path / "b")
    c = SchNetTrainer(**settings, seed=2).fit(frames, tmp_path / "c")
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.allclose(pa, pc)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_a_gpu_stops_naming_the_key(tmp_path):
    with pytest.raises(RuntimeError, match=r"training\.device = 'cuda'.*not available"):
        SchNetTrainer(device="cuda").fit(salt_frames(1, seed=0, repeat=1), tmp_path)
