"""Untrained SchNet descriptors: seeded, per-species pooled, invariant to atom order, standardised."""

import numpy as np
import pytest
from ase.build import bulk

from confselect.descriptors import SchNetDescriptor, standardise


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    base = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(2)
    out = []
    for k in range(6):
        atoms = base.copy()
        atoms.positions += rng.normal(0, 0.05 + 0.05 * k, atoms.positions.shape)
        out.append(atoms)
    return out


def small(**kw):
    return SchNetDescriptor(["Na", "Cl"], n_atom_basis=8, n_interactions=1, n_rbf=8, cutoff_A=4.0, batch_size=4, **kw)


def test_shape_and_determinism(frames):
    x = small(seed=1).transform(frames)
    assert x.shape == (6, 16) and x.dtype == np.float32
    np.testing.assert_array_equal(x, small(seed=1).transform(frames))
    assert not np.allclose(x, small(seed=2).transform(frames))


def test_invariant_to_atom_order_and_batching(frames):
    x = small().transform(frames)
    shuffled = [a[np.random.default_rng(1).permutation(len(a))] for a in frames]
    np.testing.assert_allclose(small().transform(shuffled), x, atol=1e-5)
    one_by_one = SchNetDescriptor(["Na", "Cl"], n_atom_basis=8, n_interactions=1, n_rbf=8, cutoff_A=4.0, batch_size=1)
    np.testing.assert_allclose(one_by_one.transform(frames), x, atol=1e-5)


def test_species_blocks_differ(frames):
    x = small().transform(frames[:1])
    assert not np.allclose(x[0, :8], x[0, 8:])  # cation and anion environments are kept apart


def test_standardise():
    x = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    s = standardise(x)
    np.testing.assert_allclose(s.mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(s.std(0), [1, 0, 1], atol=1e-6)  # a constant dimension becomes 0


def test_streams_from_a_generator_and_names_a_foreign_frame(frames, tmp_path):
    from ase.io import iread, write

    from confselect.pool import count_frames

    path = tmp_path / "pool.extxyz"
    write(path, frames, format="extxyz")
    assert count_frames(path) == len(frames)
    streamed = small().transform(iread(path, index=":"), n_frames=len(frames))
    np.testing.assert_allclose(streamed, small().transform(frames), atol=1e-5)
    foreign = [a.copy() for a in frames]
    foreign[4].numbers[0] = 19  # a K atom the descriptor was not built for
    with pytest.raises(ValueError, match="frame 4: element Z=19"):
        small().transform(foreign)
