"""Training throughput: the project's trainer against SchNetPack's standard training path, same model and data.

Prints one JSON object.  For each training-set size (default 32, 128 and 512 frames of the demo system:
molten NaCl, 64 ions, classical Tosi-Fumi labels from the project's LAMMPS pool code; 40 held-out frames
from an independent run) both sides train the same SchNet (``build_model`` with the demo config's width,
interactions, RBFs, cutoff and ZBL prior), from the same initial weights, on the same frames, with the same
loss weights, batch size, optimiser (AdamW), initial learning rate and number of gradient steps (the
project's budget for that size, ``SchNetTrainer.n_steps``):

* ``schnetpack_default``: SchNetPack's own route as ``spktrain`` wires it: ``ASEAtomsData`` (an ASE SQLite
  database) read through ``AtomsLoader`` with the ``MatScipyNeighborList``, ``RemoveOffsets`` and
  ``CastTo32`` transforms, ``AtomisticTask`` with ``ModelOutput`` (MSE loss, MAE metric) and spktrain's
  default ``ReduceLROnPlateau`` (factor 0.5, patience 75 epochs, cooldown 10), monitored on the training
  loss because the workflow trains without a validation split, driven by PyTorch Lightning's ``Trainer``
  (``max_steps``).  spktrain's EMA callback is left out: it swaps weights around validation epochs, which
  a run without a validation split does not have;
* ``confselect``: :class:`confselect.training.SchNetTrainer` (in-memory frames, neighbour lists once per
  frame, a plain loop, cosine learning-rate decay over the budget).

Each side is timed as training wall time with the test-set evaluations subtracted; the test force RMSE is
evaluated every ``--eval-every`` steps on both.  Reported per size: ``s_per_step``, ``wall_s`` for the
whole budget, the final test RMSEs, and ``time_to_target_s``, the training time at which each side first
reaches ``target_force_rmse_eV_A`` = the SchNetPack path's converged test force RMSE times
``1 + --tolerance`` (null if never reached).  "Converged" is the median of its last ``--target-window``
evaluations, not its last one alone: at spktrain's nearly constant learning rate its test RMSE still
jumps by up to 25 % from one evaluation to the next late in training (128 frames, steps 5800 -> 6000:
0.133 -> 0.165 eV/A in one run), so a single final point sets the target by chance.  ``ratio_vs_schnetpack_default`` = SchNetPack's time to the target / ours;
``ratio_per_step`` compares the same number of steps.  Both sides of every ratio come from this run.

    python benchmarks/bench_training.py                       # 32, 128, 512 frames; ~16 min on 2 cores
    python benchmarks/bench_training.py --sizes 32 --quick    # a short check of the wiring
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

#: spktrain's default scheduler (schnetpack/configs/task/scheduler/reduce_on_plateau.yaml), epochs as unit.
SPKTRAIN_SCHEDULER = {"mode": "min", "factor": 0.5, "patience": 75, "threshold": 0.0, "threshold_mode": "rel",
                      "cooldown": 10, "min_lr": 0.0, "smoothing_factor": 0.0}


def demo_config() -> dict:
    import yaml

    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def classical_frames(workdir: Path, n_train: int):
    """Training candidates and test frames of the demo system (cached in ``workdir``)."""
    from ase.io import read, write

    from confselect.classical import run_classical_md

    config = demo_config()
    system = config["systems"]["NaCl"]
    out = {}
    for name, seed, n, interval in (("train", 11, n_train, 200.0), ("test", 12, 40, 1000.0)):
        path = workdir / f"{name}_{n}.extxyz"
        if not path.exists():
            frames = []
            protocol = dict(config["pool"]["md"], ramp_fs=interval * n, frame_interval_fs=interval)
            run_classical_md(system, protocol, seed=seed, on_frame=frames.append)
            write(path, frames)
        out[name] = read(path, ":")
    return out["train"], out["test"]


class TestSet:
    """Test force/energy RMSE of a SchNetPack model (postprocessing on), from the in-memory frames."""

    def __init__(self, frames, cutoff_A: float, mean_per_atom: float):
        from confselect.training_data import InMemoryDataset

        self.inputs, self.targets = InMemoryDataset(frames, cutoff_A, mean_per_atom).batch(range(len(frames)))
        self.energy = np.array([a.get_potential_energy() for a in frames])
        self.n_atoms = np.array([len(a) for a in frames])

    def errors(self, model) -> dict:
        was = model.do_postprocessing
        model.do_postprocessing = True
        out = model({k: v.clone() for k, v in self.inputs.items()})
        model.do_postprocessing = was
        df = out["forces"].detach().double().numpy() - self.targets["forces"].double().numpy()
        de = (out["energy"].detach().double().numpy() - self.energy) / self.n_atoms
        return {"force_rmse_eV_A": float(np.sqrt(np.mean(df**2))), "energy_rmse_eV_atom": float(np.sqrt(np.mean(de**2)))}


def train_schnetpack_default(frames, settings: dict, steps: int, seed: int, workdir: Path, test: TestSet,
                             eval_every: int, initial_state: dict) -> dict:
    import pytorch_lightning as pl
    import schnetpack as spk
    import schnetpack.transform as trn
    import torch
    import torchmetrics

    from confselect.training import build_model

    torch.manual_seed(seed)
    db = workdir / f"spk_{len(frames)}_{seed}.db"
    db.unlink(missing_ok=True)
    dataset = spk.data.ASEAtomsData.create(str(db), distance_unit="Ang",
                                           property_unit_dict={"energy": "eV", "forces": "eV/Ang"})
    dataset.add_systems([{"energy": np.array([a.get_potential_energy()]), "forces": a.get_forces()} for a in frames],
                        frames)
    mean = float(np.mean([a.get_potential_energy() / len(a) for a in frames]))
    dataset.transforms = [
        trn.MatScipyNeighborList(cutoff=settings["cutoff_A"]),
        trn.RemoveOffsets("energy", remove_mean=True, property_mean=torch.tensor([mean], dtype=torch.float64)),
        trn.CastTo32(),
    ]
    loader = spk.data.AtomsLoader(dataset, batch_size=settings["batch_size"], shuffle=True, num_workers=0,
                                  generator=torch.Generator().manual_seed(seed))
    model = build_model(settings["n_atom_basis"], settings["n_interactions"], settings["n_rbf"], settings["cutoff_A"],
                        mean, repulsion=settings["repulsion"])
    model.load_state_dict(initial_state)
    outputs = [
        spk.task.ModelOutput(name=key, loss_fn=torch.nn.MSELoss(), loss_weight=settings[f"{key}_weight"],
                             metrics={"MAE": torchmetrics.MeanAbsoluteError()})
        for key in ("energy", "forces")
    ]
    task = spk.task.AtomisticTask(
        model=model, outputs=outputs, optimizer_cls=torch.optim.AdamW,
        optimizer_args={"lr": settings["learning_rate"]},
        scheduler_cls=spk.train.ReduceLROnPlateau,
        scheduler_args=SPKTRAIN_SCHEDULER,
        scheduler_monitor="train_loss",
    )
    curve, timer = [], {"eval_s": 0.0}

    class Evaluate(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            if step % eval_every == 0 or step == steps:
                tick = time.perf_counter()
                with torch.enable_grad():
                    errors = test.errors(pl_module.model)
                timer["eval_s"] += time.perf_counter() - tick
                curve.append((step, time.perf_counter() - timer["start"] - timer["eval_s"], errors["force_rmse_eV_A"]))

    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Evaluate()],
                         log_every_n_steps=1, deterministic=True)
    timer["start"] = time.perf_counter()
    trainer.fit(task, train_dataloaders=loader)
    wall = time.perf_counter() - timer["start"] - timer["eval_s"]
    db.unlink(missing_ok=True)
    final = test.errors(task.model)
    return {"steps": trainer.global_step, "wall_s": wall, "s_per_step": wall / trainer.global_step,
            "final_test": final, "curve": curve}


def train_confselect(frames, settings: dict, seed: int, workdir: Path, test: TestSet, eval_every: int,
                     initial_state: dict) -> dict:
    import torch

    from confselect import training

    trainer = training.SchNetTrainer(**settings, seed=seed)
    curve = []
    n_steps = trainer.n_steps(len(frames))

    def evaluate(step, model):
        if step % eval_every == 0 or step == n_steps:
            curve.append([step, None, test.errors(model)["force_rmse_eV_A"]])

    # Same initial weights as the SchNetPack side: the trainer's model is built as usual, then overwritten.
    original = training.build_model

    def with_initial_state(*args, **kwargs):
        model = original(*args, **kwargs)
        model.load_state_dict(initial_state)
        return model

    training.build_model = with_initial_state
    try:
        trainer.fit(frames, workdir / f"ours_{len(frames)}_{seed}", callback=evaluate)
    finally:
        training.build_model = original
    # Training time at each evaluation: the trainer's own time per step (callbacks excluded) times the step.
    per_step = trainer.record["s_per_step"]
    for point in curve:
        point[1] = point[0] * per_step
    model = torch.load(workdir / f"ours_{len(frames)}_{seed}" / "model.pt", weights_only=False)
    final = test.errors(model.train())
    return {"steps": trainer.record["steps"], "wall_s": trainer.record["train_time_s"],
            "s_per_step": per_step, "final_test": final, "curve": [tuple(p) for p in curve],
            "record": trainer.record}


def time_to(curve, target: float):
    for step, seconds, rmse in curve:
        if rmse <= target:
            return seconds, step
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--target-window", type=int, default=5,
                        help="target from the median of SchNetPack's last this many test evaluations")
    parser.add_argument("--tolerance", type=float, default=0.02,
                        help="target = SchNetPack's final test force RMSE x (1 + tolerance)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a tenth of the step budget")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import torch

    from confselect.training import SchNetTrainer, build_model

    torch.set_num_threads(args.threads)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_training_"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = demo_config()["training"]
    settings = {k: config[k] for k in ("n_atom_basis", "n_interactions", "n_rbf", "cutoff_A", "batch_size",
                                       "learning_rate", "energy_weight", "forces_weight", "repulsion",
                                       "max_epochs", "max_steps", "final_learning_rate_fraction")}
    settings.update(threads=args.threads, device="cpu")
    if args.quick:
        settings["max_steps"] = max(1, settings["max_steps"] // 10)
        settings["max_epochs"] = max(1, settings["max_epochs"] // 10)
    t_data = time.perf_counter()
    candidates, test_frames = classical_frames(workdir, max(args.sizes))
    data_s = time.perf_counter() - t_data
    order = np.random.default_rng(args.seed).permutation(len(candidates))

    results = []
    for n in args.sizes:
        frames = [candidates[k] for k in order[:n]]
        mean = float(np.mean([a.get_potential_energy() / len(a) for a in frames]))
        test = TestSet(test_frames, settings["cutoff_A"], mean)
        torch.manual_seed(args.seed)
        initial = build_model(settings["n_atom_basis"], settings["n_interactions"], settings["n_rbf"],
                              settings["cutoff_A"], mean, repulsion=settings["repulsion"]).state_dict()
        steps = SchNetTrainer(**{k: settings[k] for k in ("max_epochs", "max_steps", "batch_size")}).n_steps(n)
        spk_side = train_schnetpack_default(frames, settings, steps, args.seed, workdir, test, args.eval_every, initial)
        ours = train_confselect(frames, settings, args.seed, workdir, test, args.eval_every, initial)
        converged = float(np.median([rmse for _, _, rmse in spk_side["curve"][-args.target_window:]]))
        target = converged * (1.0 + args.tolerance)
        t_spk, s_spk = time_to(spk_side["curve"], target)
        t_ours, s_ours = time_to(ours["curve"], target)
        for side, t, s in ((spk_side, t_spk, s_spk), (ours, t_ours, s_ours)):
            side["time_to_target_s"], side["steps_to_target"] = t, s
        entry = {
            "n_frames": n,
            "steps": steps,
            "target_force_rmse_eV_A": target,
            "target_definition": f"median of SchNetPack's last {args.target_window} test evaluations "
                                 f"(every {args.eval_every} steps) x {1.0 + args.tolerance:g}",
            "schnetpack_default": spk_side,
            "confselect": ours,
            "ratio_per_step": spk_side["s_per_step"] / ours["s_per_step"],
            "ratio_vs_schnetpack_default": (t_spk / t_ours) if (t_spk and t_ours) else None,
            "test_force_rmse_eV_A": {"schnetpack_default": spk_side["final_test"]["force_rmse_eV_A"],
                                     "confselect": ours["final_test"]["force_rmse_eV_A"]},
        }
        results.append(entry)
        print(f"n={n}: {steps} steps, per step {entry['ratio_per_step']:.2f}x, to target "
              f"{entry['ratio_vs_schnetpack_default']}, test RMSE spk "
              f"{entry['test_force_rmse_eV_A']['schnetpack_default']:.4f} ours {entry['test_force_rmse_eV_A']['confselect']:.4f}",
              file=sys.stderr, flush=True)

    print(json.dumps({
        "benchmark": "training",
        "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
        "settings": settings,
        "data": {"train_candidates": len(candidates), "test_frames": len(test_frames), "generation_s": data_s},
        "sizes": results,
    }, indent=1))


if __name__ == "__main__":
    main()
