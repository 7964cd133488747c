"""Devices and routing: every rule that can use a GPU takes its device from config and stops before any work
where CUDA is asked for and absent; the Slurm profile gives a GPU only to rules whose device can use one; a
deterministic CUDA training fixes cuBLAS before CUDA is touched and uses no operation that torch cannot run
deterministically on CUDA.

No GPU exists on the development machine: the CUDA paths themselves are not run here (docs/cluster.md,
"Routing")."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO, TINY, snakemake
from confselect.config import SCHEMA, ConfigError, check_config, labeller_id, validate_config
from confselect.devices import (
    CUBLAS_WORKSPACE_CONFIG,
    DEVICE_KEYS,
    deterministic_training,
    requests_gpu,
    routing_problems,
)
from confselect.selection import METHODS

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible here")
PROFILE = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())


def merged_config(*overrides) -> dict:
    """config/config.yaml with ``overrides`` merged over it as --configfile merges them, schema defaults filled."""
    from snakemake.utils import update_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for override in overrides:
        update_config(config, copy.deepcopy(override))
    validate_config(config, SCHEMA)
    return config


PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())


# ------------------------------------------------------------------------------------------- routing
def test_the_slurm_profile_gives_a_gpu_to_the_training_rules_alone_and_agrees_with_paper_devices():
    routes = PROFILE["set-resources"]
    training = {rule for rule, key in DEVICE_KEYS.items() if key == "training.device"}
    assert training == {"train", "al_committee", "uncertainty"}  # every rule that trains SchNet models
    assert {rule for rule, resources in routes.items() if requests_gpu(resources)} == training
    config = merged_config(PAPER)
    assert {rule: config[key.split(".")[0]][key.split(".")[1]] for rule, key in DEVICE_KEYS.items()} == {
        "descriptors": "cpu", "select": "cpu", "train": "cuda", "ml_md": "cpu", "crystal_properties": "cpu",
        "al_committee": "cuda", "al_explore": "cpu", "uncertainty": "cuda"}
    assert routing_problems(config, routes) == ([], [])
    # with active learning and the committee uncertainty switched on, the same profile still fits
    config = merged_config(PAPER, {"sweep": {"methods": ["random", "rnd", "al_qbc"]},
                                   "validation": {"uncertainty": {"enabled": True}}})
    assert routing_problems(config, routes) == ([], [])
    warnings, errors = routing_problems(config, {**routes, "al_committee": {"runtime": 60}})
    assert len(errors) == 1 and "rule al_committee no GPU" in errors[0]


def test_a_cuda_device_without_a_gpu_request_is_an_error_naming_key_and_rule():
    config = merged_config(PAPER, {"validation": {"device": "cuda"}, "descriptors": {"device": "gpu"}})
    warnings, errors = routing_problems(config, PROFILE["set-resources"])
    assert warnings == []
    assert len(errors) == 2
    assert errors[0].startswith("descriptors.device = 'gpu'") and "rule descriptors no GPU" in errors[0]
    assert errors[1].startswith("validation.device = 'cuda'") and "rule ml_md no GPU" in errors[1]
    # auto falls back to the CPU where no GPU is visible: no error
    auto = merged_config(PAPER, {"validation": {"device": "auto"}})
    assert routing_problems(auto, PROFILE["set-resources"]) == ([], [])


def test_a_gpu_given_to_a_cpu_device_or_a_cpu_only_rule_is_a_warning():
    config = merged_config(PAPER, {"training": {"device": "cpu"}})
    routes = {**PROFILE["set-resources"], "label": {"gres": "gpu:1"}, "ml_md": {"gpu": "1 * attempt"}}
    warnings, errors = routing_problems(config, routes)
    assert errors == []
    assert any("rule train a GPU, but training.device = 'cpu'" in w for w in warnings)
    assert any("rule ml_md a GPU, but validation.device = 'cpu'" in w for w in warnings)
    assert any("rule label a GPU, but label runs on the CPU only" in w for w in warnings)
    assert len(warnings) == 3


def test_without_gpu_requests_nothing_is_checked():
    """Local runs (--cores) and profiles without GPUs: a cuda device is the user's business."""
    config = merged_config({"training": {"device": "cuda"}, "validation": {"device": "cuda"}})
    assert routing_problems(config, {"train": {"runtime": 60}, "label": {"mem_mb": 1000}}) == ([], [])


@pytest.mark.workflow
def test_the_workflow_stops_at_parse_time_where_a_cuda_rule_gets_no_gpu(tmp_path):
    bad = tmp_path / "ml_md_on_cuda.yaml"
    bad.write_text(yaml.safe_dump({"validation": {"device": "cuda"}}))
    proc = snakemake(tmp_path, "-n", "--workflow-profile", str(REPO / "profiles" / "slurm"),
                     configfiles=(TINY, bad), check=False)
    assert proc.returncode != 0
    assert "Routing: validation.device = 'cuda', but the profile's set-resources give rule ml_md no GPU" in proc.stdout
    # the tiny config trains on the CPU, so train's GPU is named as idle, and nothing was planned
    assert "rule train a GPU, but training.device = 'cpu'" in proc.stdout
    assert "Job stats" not in proc.stdout


# ------------------------------------------------------------------------------------------- scripts
def _placeholders(workdir, rule, config):
    """Every file upstream of one job of ``rule``, as placeholders written in dependency order (so that
    Snakemake plans that job alone), and the job's target and log.

    The inputs are not valid (text in an .npy, an .extxyz, a .pt): a job that reads any of them before it
    checks its device fails with another error than the one the test expects."""
    labels = f"labels/{labeller_id(config, 'NaCl')}/selection/md/random/seed0"  # n = 4: one batch
    model = "models/md/random/n4/seed0"
    al = "al/md/seed0/iter1"
    chain = {
        "descriptors": ["pool/md/frames.extxyz"],
        "select": ["pool/md/features.npz", "pool/md/descriptors.npy"],
        "train": ["selection/md/random/seed0.json", f"{labels}/batch0.extxyz"],
        "ml_md": [f"{model}/model.pt", f"{model}/training.json", "test/frames.extxyz", "reference/npt.json",
                  "reference/state_points.extxyz", "reference/nvt.json"],
        "uncertainty": [f"labels/{labeller_id(config, 'NaCl')}/test/batch0.extxyz",
                        f"labels/{labeller_id(config, 'NaCl')}/test_set.extxyz"],
        # active learning (tiny: seed and calibration sets in batch0; a directory per committee member)
        "al_committee": [],
        "al_explore": [f"{al}/member0/", f"{al}/member1/"],
    }
    jobs = {
        "descriptors": ("pool/md/descriptors.npy", "descriptors_md.log"),
        "select": ("selection/md/rnd/seed0.json", "select_md_rnd_seed0.log"),
        "train": (f"{model}/model.pt", "train_md_random_n4_seed0.log"),
        "ml_md": (f"{model}/md.json", "ml_md_md_random_n4_seed0.log"),
        "uncertainty": (f"{model}/uncertainty.json", "uncertainty_md_random_n4_seed0.log"),
        "al_committee": (f"{al}/member0", "al_committee_md_seed0_iter1_member0.log"),
        "al_explore": (f"{al}/exploration.json", "al_explore_md_seed0_iter1.log"),
    }
    for step in list(chain)[: list(chain).index(rule) + 1]:
        for name in chain[step]:
            text = '{"indices": [0, 1, 2, 3]}' if name.startswith("selection/") else "placeholder\n"
            path = workdir / "results" / "NaCl" / name
            if name.endswith("/"):  # a directory output
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    target, log = jobs[rule]
    return f"results/NaCl/{target}", f"logs/NaCl/{log}"


@NO_GPU
@pytest.mark.workflow
# crystal_properties (crystal systems only) reads validation.device like ml_md, through the same resolve_device
@pytest.mark.parametrize("rule", [rule for rule in DEVICE_KEYS if rule != "crystal_properties"])
def test_each_script_stops_on_cuda_naming_its_key_before_reading_input(tmp_path, rule):
    """Real torch, no GPU: the job fails with resolve_device's message for its own config key."""
    key = DEVICE_KEYS[rule]
    section, name = key.split(".")
    override = {section: {name: "cuda"}, "sweep": {"methods": ["random", "rnd", "al_qbc"], "n_train": [4, 6]}}
    if rule == "uncertainty":
        override["validation"] = {"uncertainty": {"enabled": True}}
    cuda = tmp_path / "cuda.yaml"
    cuda.write_text(yaml.safe_dump(override))
    workdir = tmp_path / "run"
    target, log = _placeholders(workdir, rule, merged_config(yaml.safe_load(TINY.read_text()), override))
    # (an option first: it ends --configfile's list of files)
    proc = snakemake(workdir, "--keep-going", target, configfiles=(TINY, cuda), check=False)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert f"rule {rule}:" in proc.stdout and "Job stats" in proc.stdout
    planned = proc.stdout.split("Job stats:")[1].split("total")[0]
    assert [line.split()[0] for line in planned.splitlines()[3:] if line.strip()] == [rule], planned
    text = (workdir / log).read_text()
    # the job's one exception, raised before any input was read
    assert text.strip().splitlines()[-1].startswith(f"RuntimeError: {key} = 'cuda', but CUDA is not available"), \
        text[-3000:]
    assert not (workdir / target).exists()


# ------------------------------------------------------------------------------------------- selection keys
def test_selection_device_and_threads_are_job_keys_not_method_options():
    config = merged_config({"selection": {"device": "auto", "threads": 2, "rnd": {"steps_per_pick": 5}}})
    check_config(config, METHODS)  # device and threads are not taken for method names
    for option in ("device", "threads"):
        bad = merged_config({"selection": {"rnd": {option: 1}}})
        with pytest.raises(ConfigError, match=rf"selection\.rnd\.{option}: set selection\.{option} instead"):
            check_config(bad, METHODS)


# ------------------------------------------------------------------------------------------- determinism
@NO_GPU
def test_deterministic_training_fixes_cublas_before_cuda_is_touched(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with pytest.raises(RuntimeError, match=r"training\.device = 'cuda', but CUDA is not available"):
        deterministic_training("cuda", "training.device")
    # set before resolve_device asked torch about CUDA, and kept for the process's first cuBLAS handle
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE_CONFIG
    assert not torch.are_deterministic_algorithms_enabled()
    # a site's own setting wins
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    assert deterministic_training("auto", "training.device") == "cpu"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    # on the CPU nothing changes: no environment, no deterministic mode (the CPU training is reproducible)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")
    assert deterministic_training("cpu", "training.device") == "cpu"
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert not torch.are_deterministic_algorithms_enabled()


#: Operations that torch 2.13 has no deterministic CUDA kernel for (torch.use_deterministic_algorithms's
#: documentation); with warn_only=False they raise on CUDA.  cumsum only in floating point.
NO_DETERMINISTIC_CUDA_KERNEL = {
    "avg_pool3d_backward", "adaptive_avg_pool2d_backward", "_adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d_backward", "_adaptive_avg_pool3d_backward", "adaptive_max_pool2d_backward",
    "fractional_max_pool2d_backward", "fractional_max_pool3d_backward", "max_unpool1d", "max_unpool2d",
    "max_unpool3d", "upsample_linear1d_backward", "upsample_bilinear2d_backward", "upsample_bicubic2d_backward",
    "upsample_trilinear3d_backward", "reflection_pad1d_backward", "reflection_pad2d_backward",
    "reflection_pad3d_backward", "nll_loss_forward", "nll_loss2d_forward", "_ctc_loss_backward",
    "_embedding_bag_backward", "_embedding_bag_dense_backward", "put_", "put", "histc", "bincount", "median",
    "grid_sampler_2d_backward", "grid_sampler_3d_backward", "scatter_reduce", "scatter_reduce_",
}


def test_the_training_step_uses_only_operations_with_deterministic_cuda_kernels(tmp_path):
    """Every aten operation of a training (forward, loss, backward, fused AdamW), recorded with the dtypes
    of its tensor arguments, against torch's list of operations that would stop a deterministic CUDA run;
    and the whole training under torch's strict deterministic mode on the CPU."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from test_training import salt_frames
    from confselect.training import SchNetTrainer

    class Recorder(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: dict[str, set] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            dtypes = {a.dtype for a in args if isinstance(a, torch.Tensor)}
            self.ops.setdefault(func.overloadpacket.__name__, set()).update(dtypes)
            return func(*args, **(kwargs or {}))

    frames = salt_frames(4, seed=0, repeat=1)
    settings = dict(n_atom_basis=8, n_interactions=2, n_rbf=8, cutoff_A=5.0, max_epochs=2, batch_size=2)
    for repulsion in ("zbl", "none"):
        with Recorder() as recorder:
            SchNetTrainer(**settings, repulsion=repulsion).fit(frames, tmp_path / repulsion)
        ops = recorder.ops
        assert {"embedding_dense_backward", "index_add", "mse_loss_backward", "_fused_adamw_"} <= set(ops)
        assert not set(ops) & NO_DETERMINISTIC_CUDA_KERNEL, set(ops) & NO_DETERMINISTIC_CUDA_KERNEL
        assert all(not d.is_floating_point for d in ops.get("cumsum", ())), ops["cumsum"]
    torch.use_deterministic_algorithms(True)  # strict: a CPU operation without a deterministic kernel raises
    try:
        strict = SchNetTrainer(**settings, seed=3).fit(frames, tmp_path / "strict")
    finally:
        torch.use_deterministic_algorithms(False)
    plain = SchNetTrainer(**settings, seed=3).fit(frames, tmp_path / "plain")
    for a, b in zip(strict.parameters(), plain.parameters()):
        assert torch.equal(a, b)


def test_the_demo_and_paper_configs_train_deterministically_by_default():
    assert merged_config()["training"]["deterministic"] is True
    assert merged_config(PAPER)["training"]["deterministic"] is True


# ------------------------------------------------------------------------------------------- device-generic
def test_rnd_and_classical_qbc_initialise_on_the_cpu_whatever_the_device():
    """The networks of a seed are drawn from CPU generators, so they do not depend on the device; the
    CPU selection is unchanged."""
    from confselect.selection import PoolFeatures, make_selector

    target, predictor = make_selector("rnd", seed=4).networks(6)
    assert all(p.device.type == "cpu" for p in [*target.parameters(), *predictor.parameters()])
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence(4).generate_state(2, dtype=np.uint64)[0]))
    bound = 1.0 / np.sqrt(6)
    expected = torch.empty(128, 6).uniform_(-bound, bound, generator=generator)
    assert torch.equal(target[0].weight.detach(), expected)
    rng = np.random.default_rng(0)
    pool = PoolFeatures(descriptors=rng.normal(size=(60, 6)).astype(np.float32), energies=rng.normal(size=60))
    for method in ("rnd", "classical_qbc"):
        a = make_selector(method, seed=1).select(pool, 12)
        b = make_selector(method, seed=1, device="cpu", threads=1).select(pool, 12)
        assert np.array_equal(a, b), method


@pytest.mark.workflow
def test_moving_any_job_to_another_device_or_width_plans_nothing(tiny_run, tmp_path):
    """Device and threads of descriptors, select, train and ml_md are machine settings, not params: a finished
    run stays finished when they change (auto resolves to the CPU here, so the jobs could even run)."""
    from conftest import planned_jobs

    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump({section: {"device": "auto", "threads": 3}
                                     for section in ("descriptors", "selection", "validation", "training")}))
    out = snakemake(tiny_run, "-n", configfiles=(TINY, moved)).stdout
    assert planned_jobs(out) == {}, out[-3000:]


def test_a_crystal_sweep_routes_its_crystal_jobs_like_ml_md():
    """crystal_properties reads validation.device: with a crystal swept, cuda needs its GPU request too."""
    metal = yaml.safe_load((REPO / "tests" / "configs" / "tiny_metal.yaml").read_text())
    config = merged_config(PAPER, {**metal, "validation": {"device": "cuda"}})
    routes = {**PROFILE["set-resources"], "ml_md": {"gpu": 1}}
    warnings, errors = routing_problems(config, routes)
    assert len(errors) == 1 and "rule crystal_properties no GPU" in errors[0]
    assert routing_problems(config, {**routes, "crystal_properties": {"gpu": 1}}) == ([], [])
