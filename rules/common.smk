import functools
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The bundled package (src/confselect). Scripts find it through workflow/scripts/confselect, a link to it
# (Snakemake puts a script's own directory on its path), so jobs need neither an install nor PYTHONPATH.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from confselect.config import (
    ConfigError,
    check_config,
    full_arm_size,
    label_identity,
    labeller_id,
    labeller_settings,
    n_select,
    selection_options,
    validate_config,
    without_machine_settings,
)
from confselect.pool_config import generators, n_frames, pool_recipes, pool_temperature_range, pool_top_temperature
from confselect.system_config import system_definition
from confselect.selection import METHODS, make_selector
from confselect.state_point import state_point_temperatures, stress_temperature
from confselect.structures import system_phase

try:
    validate_config(config, Path(workflow.basedir) / "config" / "schema.yaml")
    check_config(config, METHODS)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

SWEEP = config["sweep"]
#: Swept systems validated as crystals (validation.crystal as well as the NVT, stress and NPT runs).
CRYSTAL_SYSTEMS = [s for s in SWEEP["systems"] if system_phase(config["systems"][s]) == "crystal"]
#: Pool recipe name -> its generators (sweep.pools); the held-out set's generators.
POOLS = pool_recipes(config)
TEST_GENERATORS = list(generators(config, "test"))


def check_labellers():
    """A missing executable, basis or pseudopotential file stops the run here, before any job.

    Only in the Snakemake process that plans the run: a cluster job parses this file again (with --mode
    remote or subprocess), and its labeller reports its own failures.  The check itself runs in a child
    interpreter (confselect.setup_check), so that planning loads no labeller software."""
    from confselect.setup_check import check_labellers as run_check

    requests = []
    for system in SWEEP["systems"]:
        name, settings = labeller_settings(config, system)
        requests.append({"system": system, "labeller": name, "settings": settings,
                         "symbols": list(config["systems"][system]["species"]),
                         # the teacher's potential is run once too: it makes the pool whatever the labeller
                         "teacher": config["systems"][system]})
    problems = run_check(requests)
    if problems:
        raise WorkflowError(
            "; ".join(problems) + " (set labelling.check_setup: false if the labeller is only installed where "
            "the jobs run)"
        )


if config["labelling"]["check_setup"] and workflow.is_main_process:
    check_labellers()


def check_routing():
    """Warn where the profile gives a GPU to a rule whose device is cpu; stop where a rule's device is cuda
    and the profile gives it none (confselect.devices.routing_problems; docs/cluster.md, "Routing")."""
    from snakemake.logging import logger

    from confselect.devices import routing_problems

    warnings, errors = routing_problems(config, workflow.resource_settings.overwrite_resources)
    for message in warnings:
        logger.warning(f"Routing: {message}")
    if errors:
        raise WorkflowError("Routing: " + "; ".join(errors))


if workflow.is_main_process:  # on the submitting host; a cluster job re-parses this file and would repeat it
    check_routing()


wildcard_constraints:
    system=r"[A-Za-z0-9_]+",
    role=r"pool|test",
    pool=r"[A-Za-z0-9_]+",
    generator=r"[A-Za-z0-9_]+",
    subset=r"test|selection/[A-Za-z0-9_]+/[a-z_]+/seed\d+|al/[A-Za-z0-9_]+/seed\d+/iter\d+",
    iteration=r"\d+",
    member=r"\d+",
    method=r"[a-z_]+",
    n=r"\d+",
    seed=r"\d+",
    batch=r"\d+",


def generator_settings(role, name):
    """Settings of a pool generator (role pool) or of the held-out set's version of it (role test)."""
    table = generators(config, role)
    if name not in table:
        raise WorkflowError(f"no {role} generator {name!r} (defined: {list(table)})")
    return table[name]


def recipe_generators(pool):
    """The generators of pool recipe ``pool``."""
    if pool not in POOLS:
        raise WorkflowError(f"no pool recipe {pool!r} (sweep.pools: {list(POOLS)})")
    return POOLS[pool]


def experiment_entry(system):
    """The system's entry of the shipped experimental data (None if it has none)."""
    from confselect.experiment import experiment_for

    return experiment_for(system, config["systems"][system])


def experiment_transport(system):
    """Experimental transport of the system at the NVT temperature (:func:`confselect.experiment.transport_at`)."""
    from confselect.experiment import transport_at

    entry = experiment_entry(system)
    return transport_at(entry, config["validation"]["md"]["temperature_K"]) if entry else {}


@functools.cache
def labeller_dir(system):
    """labeller_id of ``system``, hashed once per parse: the DAG asks for it once per label of every training
    and test set (about 150,000 times for a paper-scale sweep)."""
    return labeller_id(config, system)


#: Frames per label job (labelling.batch_size).
LABEL_BATCH = int(config["labelling"]["batch_size"])


def label_batch_input(wildcards):
    """Input of a label job: the trajectory its frames come from and, for a selection's batch, the selection
    (its order); refuses labels requested under another labeller's directory."""
    expected = labeller_dir(wildcards.system)
    if wildcards.labeller != expected:
        raise WorkflowError(
            f"labels under {wildcards.labeller} requested, but systems.{wildcards.system} is labelled by {expected}"
        )
    if wildcards.subset == "test":
        return {"frames": f"results/{wildcards.system}/test/frames.extxyz"}
    if wildcards.subset.startswith("al/"):  # an active-learning iteration's picks, in pick order
        return {"frames": f"results/{wildcards.system}/{wildcards.subset}/picks.extxyz"}
    pool = wildcards.subset.split("/")[1]
    return {"frames": f"results/{wildcards.system}/pool/{pool}/frames.extxyz",
            "selection": f"results/{wildcards.system}/{wildcards.subset}.json"}


def label_batches(system, subset, n):
    """The label files that hold the first ``n`` frames of ``subset`` (``selection/<pool>/<method>/seed<seed>`` or
    ``test``): their number follows from n and labelling.batch_size, so the plan needs no selection file."""
    return [f"results/{system}/labels/{labeller_dir(system)}/{subset}/batch{k}.extxyz"
            for k in range(-(-int(n) // LABEL_BATCH))]


def training_labels(wildcards):
    """Label batches holding the first n frames of the (pool, method, seed) selection: the training set of
    size n (the training script takes the first n of them); for al_qbc, the loop's labels at budget n
    (:func:`al_inputs`)."""
    if wildcards.method == AL_METHOD:
        return al_inputs(wildcards, AL.iterations_up_to(SWEEP["n_train"], wildcards.n))
    return {"labels": label_batches(wildcards.system,
                                    f"selection/{wildcards.pool}/{wildcards.method}/seed{wildcards.seed}", wildcards.n)}


def training_params(wildcards):
    """What a model is: the training settings, and for al_qbc also the loop's (a changed AL knob retrains
    only the AL arm)."""
    training = without_machine_settings(config["training"], "training")
    if wildcards.method != AL_METHOD:
        return training
    if AL.iterations_up_to(SWEEP["n_train"], wildcards.n):
        return {**training, "al_qbc": AL_OPTIONS}
    # the loop's first model trains on the seed set alone: only the knobs that choose it
    return {**training, "al_qbc": {k: v for k, v in AL_OPTIONS.items() if k in AL.SEED_SET_KNOBS}}


# Active learning (al_qbc, rules/active_learning.smk): its knobs, label schedule and the files of each iteration.
AL_METHOD = "al_qbc"
AL_OPTIONS = selection_options(config).get(AL_METHOD, {})
AL = make_selector(AL_METHOD, **AL_OPTIONS)
AL_SWEPT = AL_METHOD in SWEEP["methods"]
AL_SCHEDULE = AL.schedule(SWEEP["n_train"]) if AL_SWEPT else []


def al_dir(wildcards) -> str:
    return f"results/{wildcards.system}/al/{wildcards.pool}/seed{wildcards.seed}"


def al_inputs(wildcards, iterations):
    """The AL labels after ``iterations``: the seed and calibration sets' label batches (the first
    n_initial + n_calibration frames of the seed method's selection), each iteration's pick labels and its
    record (exploration.json), in order."""
    root = al_dir(wildcards)
    return {
        "seed": label_batches(wildcards.system, f"selection/{wildcards.pool}/{AL.initial}/seed{wildcards.seed}",
                              AL.start_budget),
        "picks": [path for it in iterations
                  for path in label_batches(wildcards.system, f"al/{wildcards.pool}/seed{wildcards.seed}/iter{it.index}",
                                            it.max_picks)],
        "records": [f"{root}/iter{it.index}/exploration.json" for it in iterations],
    }


def al_iteration(wildcards):
    """The iteration of the ``iteration`` wildcard (an unknown one names the schedule)."""
    index = int(wildcards.iteration)
    if not 1 <= index <= len(AL_SCHEDULE):
        raise WorkflowError(f"al_qbc has iterations 1-{len(AL_SCHEDULE)} for sweep.n_train {SWEEP['n_train']}, "
                            f"not {index}")
    return AL_SCHEDULE[index - 1]


def al_before(wildcards):
    """Inputs of an iteration's jobs: the labels and records of the iterations before it."""
    return al_inputs(wildcards, AL_SCHEDULE[: al_iteration(wildcards).index - 1])


def test_labels(wildcards):
    return label_batches(wildcards.system, "test", n_frames(config, "test"))


def test_set(wildcards):
    """The held-out frames' labels gathered in one file (rule test_set)."""
    return f"results/{wildcards.system}/labels/{labeller_dir(wildcards.system)}/test_set.extxyz"


FULL_N = full_arm_size(config)


def model_dirs():
    """Every model of the sweep: each pool recipe, method, size and seed, and the upper-bound arm (per pool
    recipe and seed) if enabled."""
    dirs = [
        f"results/{system}/models/{pool}/{method}/n{n}/seed{seed}"
        for system in SWEEP["systems"]
        for pool in POOLS
        for method in SWEEP["methods"]
        for n in (AL.model_sizes(SWEEP["n_train"]) if method == AL_METHOD else SWEEP["n_train"])
        for seed in SWEEP["seeds"]
    ]
    if FULL_N is not None:
        dirs += [f"results/{system}/models/{pool}/full/n{full_size(pool)}/seed{seed}"
                 for system in SWEEP["systems"] for pool in POOLS for seed in SWEEP["seeds"]]
    return dirs


def full_size(pool):
    """The upper-bound arm's training-set size on pool recipe ``pool``: sweep.full.n_train or the whole recipe."""
    return int(config["sweep"]["full"]["n_train"] or n_frames(config, "pool", pool))


def labeller_md_files():
    """The labeller's own MD run of every system (validation.labeller_md), if switched on."""
    if not config["validation"]["labeller_md"]["enabled"]:
        return []
    return [f"results/{system}/reference/labeller_md_{labeller_dir(system)}.json" for system in SWEEP["systems"]]


def selection_length(wildcards):
    """How many frames a selection orders: the full arm's size for it, else sweep.n_select."""
    return full_size(wildcards.pool) if wildcards.method == "full" and FULL_N is not None else n_select(config)
