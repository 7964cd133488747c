"""Configuration checks the JSON schema cannot express, and values derived from the config.

:func:`check_config` runs when the Snakefile is parsed, after schema validation, so a bad sweep stops with
one message naming the key before any job starts.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
from pathlib import Path

#: The configuration schema: every default lives here.
SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


#: Keys of the ``selection`` section that belong to every select job, not to one method's selector.
SELECTION_JOB_KEYS = ("device", "threads")

#: Samples an MD run needs for block-averaged transport coefficients (5 blocks of >= 6 frames).
MIN_SAMPLES = 30
#: Samples after equilibration for a block-averaged NPT density (5 blocks of >= 2 frames).
MIN_DENSITY_SAMPLES = 10


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


def _dotted(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


@functools.lru_cache(maxsize=4)
def _load_schema(path: str) -> dict:
    import yaml

    with open(path) as handle:
        return yaml.safe_load(handle)


def _schema(schema_path) -> dict:
    """The parsed schema (read once per process; callers must not modify it)."""
    return _load_schema(str(Path(schema_path).resolve()))


def validate_config(config: dict, schema_path) -> None:
    """Check ``config`` against the JSON schema (draft 2020-12) and fill in the schema's defaults.

    Raises :class:`ConfigError` with one line, ``config key a.b[2]: <what is wrong>``, for the most relevant
    error (jsonschema's ``best_match``), instead of a dump of the schema.
    """
    import jsonschema

    schema = _schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(f"config key {_dotted(error.absolute_path)}: {error.message}")
    _fill_defaults(config, schema, schema)


def section_defaults(schema_path, *keys) -> dict:
    """The schema's defaults of one config section, e.g. ``("validation", "stability")``: the only defaults
    there are, for code that needs a section without a config (tests, ``python -m`` tools)."""
    schema = _schema(schema_path)
    node = schema
    for key in keys:
        node = _resolve(node, schema)["properties"][key]
    settings = {"section": {}}
    _fill_defaults(settings, {"properties": {"section": node}}, schema)
    return settings["section"]


def load_config(config_files=(), schema_path=SCHEMA) -> dict:
    """The workflow's configuration as Snakemake builds it: ``config/config.yaml`` (the embedded default)
    with each file merged over it in turn, validated and checked, defaults filled in (for ``python -m``
    tools that must see the same settings as the workflow)."""
    import yaml
    from snakemake.utils import update_config

    from .selection import METHODS

    with open(Path(schema_path).parent / "config.yaml") as handle:
        config = yaml.safe_load(handle)
    for path in config_files:
        with open(path) as handle:
            update_config(config, yaml.safe_load(handle) or {})
    validate_config(config, schema_path)
    check_config(config, METHODS)
    return config


def report_settings(schema_path, config_file=None) -> dict:
    """The ``report`` section of ``config_file`` (validated with the rest of it), or the schema's defaults."""
    import yaml

    if config_file is not None:
        with open(config_file) as handle:
            config = yaml.safe_load(handle)
        validate_config(config, schema_path)
        return config["report"]
    return section_defaults(schema_path, "report")


def _resolve(node: dict, root: dict) -> dict:
    while "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _fill_defaults(instance, node, root) -> None:
    """Insert ``default`` values of absent properties (recursively through objects)."""
    node = _resolve(node, root)
    if not isinstance(instance, dict):
        return
    for key, sub in node.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            _fill_defaults(instance[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in node.get("properties", {}):
                _fill_defaults(value, extra, root)
    for branch in node.get("allOf", []):  # kinds: if {kind: const} then the kind's own properties
        if "if" in branch and _matches(instance, branch["if"]):
            _fill_defaults(instance, branch["then"], root)


def _matches(instance: dict, condition: dict) -> bool:
    """Whether ``instance`` meets an ``if`` of constant properties (the schema's kind switches)."""
    return all(instance.get(key) == prop.get("const") for key, prop in condition.get("properties", {}).items())


def n_select(config: dict) -> int:
    """Length of every selection: ``sweep.n_select`` if set, else the largest training-set size."""
    sweep = config["sweep"]
    return int(sweep.get("n_select") or max(sweep["n_train"]))


def labeller_settings(config: dict, system: str) -> tuple[str, dict]:
    """The labeller of ``system`` and all its settings (physics and machine), as the labeller takes them."""
    name = config["systems"][system].get("labeller", "classical")
    if name == "classical":  # the potential with its file paths, runnable here
        definition = config["systems"][system]
        settings = {"potential": definition["potential"], "charges_e": definition.get("charges_e") or {}}
        if definition["potential"]["type"] != "born_mayer_huggins_tosi_fumi":
            settings["species"] = list(definition["species"])
        return name, settings
    return name, dict(config["labelling"].get(name, {}))


def machine_setting_names(*section: str, schema_path=SCHEMA) -> set[str]:
    """Keys of a config section (e.g. ``("labelling", "cp2k")``, ``("training",)``) marked ``x-machine: true`` in
    the schema: how and where something is computed (executable, launcher, ranks, threads, device, paths,
    time limits, solver knobs that do not change a converged result), never what it is. They stay out of
    identities and rule params, so changing them reruns nothing."""
    return set(_machine_setting_names(section, str(schema_path)))


@functools.lru_cache(maxsize=64)
def _machine_setting_names(section: tuple[str, ...], schema_path: str) -> frozenset[str]:
    # Cached: the label rule's params ask once per label job, and resolving the schema's path each time was
    # 1.9 of the 47 profiled seconds of a no-op rerun of the paper-scale sweep (17,386 label jobs).
    schema = _schema(schema_path)
    node = schema
    for key in section:
        node = _resolve(node, schema).get("properties", {}).get(key, {})
    return frozenset(key for key, prop in _resolve(node, schema).get("properties", {}).items() if prop.get("x-machine"))


def without_machine_settings(settings: dict, *section: str) -> dict:
    """``settings`` of that config section without its machine settings (:func:`machine_setting_names`)."""
    machine = machine_setting_names(*section)
    return {key: value for key, value in settings.items() if key not in machine}


def label_identity(config: dict, system: str) -> tuple[str, dict]:
    """The labeller of ``system`` and the settings that change its numbers: all settings but the machine ones.

    This is what a label's identity (:func:`labeller_id`, the label rule's params) is made of, so moving a
    campaign to another machine (other executable, launcher, ranks, threads, data directory, time limit)
    plans no label job again, while a changed cutoff, functional or basis plans all of them.
    """
    name, settings = labeller_settings(config, system)
    if name == "classical":
        from .system_config import teacher_identity

        return name, teacher_identity(config["systems"][system], f"systems.{system}")
    return name, without_machine_settings(settings, "labelling", name)


def labeller_id(config: dict, system: str) -> str:
    """Directory name of a labeller and its physics: ``{name}-{8 hex digits of the physics settings' hash}``.

    Labels made with other physics live elsewhere and are kept; the same physics always maps here, whatever
    machine computed it.
    """
    name, settings = label_identity(config, system)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{name}-{digest}"


def full_arm_size(config: dict) -> int | None:
    """Training-set size of the upper-bound arm (``sweep.full``), None if it is off."""
    from .pool_config import n_frames

    full = config["sweep"]["full"]
    if not full["enabled"]:
        return None
    return int(full["n_train"] or n_frames(config, "pool"))


def check_config(config: dict, methods) -> None:
    """Raise :class:`ConfigError` for the first cross-key problem found."""
    from .pool_config import check_pools, n_frames, pool_recipes
    from .system_config import check_crystal_validation, check_rdf_range, check_system

    sweep = config["sweep"]
    for i, system in enumerate(sweep["systems"]):
        if system not in config["systems"]:
            raise ConfigError(
                f"sweep.systems[{i}]: system {system!r} has no definition under 'systems' "
                f"(defined: {sorted(config['systems'])})"
            )
    for name in sweep["systems"]:
        check_system(config["systems"][name], f"systems.{name}")
        check_crystal_validation(config, config["systems"][name], f"systems.{name}")
        check_rdf_range(config, config["systems"][name], f"systems.{name}")
    check_pools(config)
    for i, method in enumerate(sweep["methods"]):
        if method not in methods:
            raise ConfigError(f"sweep.methods[{i}]: unknown selection method {method!r}; known: {sorted(methods)}")
    for method in selection_options(config):
        if method not in methods:
            raise ConfigError(f"selection.{method}: unknown selection method; known: {sorted(methods)}")
    pool_size = n_frames(config, "pool")
    smallest = min(pool_recipes(config), key=lambda name: n_frames(config, "pool", name))
    for i, n in enumerate(sweep["n_train"]):
        if n > pool_size:
            raise ConfigError(
                f"sweep.n_train[{i}] = {n} exceeds the pool of {pool_size} frames (pool recipe {smallest!r}, "
                f"the frames of its generators)"
            )
    if sweep.get("n_select") is not None:
        if sweep["n_select"] < max(sweep["n_train"]):
            raise ConfigError(
                f"sweep.n_select = {sweep['n_select']} is below the largest sweep.n_train ({max(sweep['n_train'])})"
            )
        if sweep["n_select"] > pool_size:
            raise ConfigError(f"sweep.n_select = {sweep['n_select']} exceeds the pool of {pool_size} frames")
    full = full_arm_size(config)
    if full is not None and full > pool_size:
        raise ConfigError(f"sweep.full.n_train = {full} exceeds the pool of {pool_size} frames")
    if "full" in sweep["methods"] and full is not None:
        raise ConfigError("sweep.methods lists 'full' and sweep.full.enabled is true: the arm would run twice")
    if n_frames(config, "test") < 1:
        raise ConfigError("test.generators: the held-out set has no frames (an MD ramp shorter than its frame interval?)")
    check_validation(config)
    for method, options in selection_options(config).items():
        known = [p for p in inspect.signature(methods[method]).parameters if p != "seed"]
        for option in options:
            if option in SELECTION_JOB_KEYS:
                raise ConfigError(
                    f"selection.{method}.{option}: set selection.{option} instead (one {option} for every select job)"
                )
            if option not in known:
                raise ConfigError(f"selection.{method}.{option}: not an option of {method!r}; options: {known}")
        try:
            methods[method](seed=0, **options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"selection.{method}: {err}") from None
    if "al_qbc" in sweep["methods"]:
        check_active_learning(config, methods)


def check_active_learning(config: dict, methods) -> None:
    """al_qbc's seed-set method orders the pool, its seed and calibration sets fit in the selection, and
    some sweep size leaves room for them."""
    al = methods["al_qbc"](seed=0, **selection_options(config).get("al_qbc", {}))
    if al.initial not in methods or methods[al.initial].iterative or al.initial == "full":
        one_shot = [m for m in methods if not methods[m].iterative and m != "full"]
        raise ConfigError(f"selection.al_qbc.initial: {al.initial!r} is not a one-shot selection method; "
                          f"one of {one_shot}")
    if al.start_budget > n_select(config):
        raise ConfigError(f"selection.al_qbc: n_initial + n_calibration = {al.start_budget} exceeds the selection "
                          f"length {n_select(config)} (sweep.n_select, default the largest sweep.n_train)")
    if not al.model_sizes(config["sweep"]["n_train"]):
        raise ConfigError(f"selection.al_qbc: no sweep.n_train size reaches n_initial + n_calibration = "
                          f"{al.start_budget}, the labels the loop holds before its first iteration")


def selection_options(config: dict) -> dict:
    """Method name -> keyword arguments of its selector (the ``selection`` section without its job keys)."""
    return {k: v for k, v in config.get("selection", {}).items() if k not in SELECTION_JOB_KEYS}


def check_validation(config: dict) -> None:
    """One protocol for models and reference: every ``validation.reference`` key (and
    ``validation.density.reference_duration_fs``) must equal the model's; the averaged run must hold enough
    samples and blocks for the transport window; the state-point source must have its densities."""
    validation = config["validation"]
    md, transport, reference = validation["md"], validation["transport"], validation["reference"]
    model_keys = {"duration_fs": ("validation.md.duration_fs", md["duration_fs"]),
                  "equilibration_fs": ("validation.md.equilibration_fs", md["equilibration_fs"]),
                  "sample_interval_fs": ("validation.md.sample_interval_fs", md["sample_interval_fs"]),
                  "fit_window_ps": ("validation.transport.fit_window_ps", transport["fit_window_ps"])}
    pairs = [(f"validation.reference.{key}", reference[key], *model_keys[key]) for key in reference]
    density = validation["density"]
    if "reference_duration_fs" in density:
        pairs.append(("validation.density.reference_duration_fs", density["reference_duration_fs"],
                      "validation.density.duration_fs", density["duration_fs"]))
    for ref_key, ref_value, model_key, model_value in pairs:
        if ref_value != model_value:
            raise ConfigError(
                f"{ref_key} = {ref_value} differs from {model_key} = {model_value}: models and reference run "
                f"the same protocol (drop {ref_key} or make the two equal)"
            )
    if md["duration_fs"] / md["sample_interval_fs"] < MIN_SAMPLES:
        raise ConfigError(
            f"validation.md.duration_fs gives {int(md['duration_fs'] // md['sample_interval_fs'])} samples at "
            f"validation.md.sample_interval_fs; diffusion and conductivity need at least {MIN_SAMPLES}"
        )
    from .transport_window import MAX_WINDOW_FRACTION_OF_BLOCK, block_length_ps

    start_ps, end_ps = transport["fit_window_ps"]
    block_ps = block_length_ps(md["duration_fs"], md["sample_interval_fs"], transport["n_blocks"])
    if not start_ps < end_ps or end_ps > MAX_WINDOW_FRACTION_OF_BLOCK * block_ps:
        raise ConfigError(
            f"validation.transport.fit_window_ps = {transport['fit_window_ps']} ps must increase and end within "
            f"{MAX_WINDOW_FRACTION_OF_BLOCK:g} of a block: validation.md.duration_fs in validation.transport.n_blocks "
            f"blocks spans {block_ps:g} ps"
        )
    averaged = density["duration_fs"] - density["equilibration_fs"]
    if averaged / density["sample_interval_fs"] < MIN_DENSITY_SAMPLES:
        raise ConfigError(
            f"validation.density.duration_fs = {density['duration_fs']:g} fs leaves "
            f"{max(0, int(averaged // density['sample_interval_fs']))} samples after validation.density.equilibration_fs "
            f"= {density['equilibration_fs']:g} fs; a block-averaged density needs at least {MIN_DENSITY_SAMPLES}"
        )
    _check_state_point(config)


def _check_state_point(config: dict) -> None:
    """The densities of ``validation.state_point`` exist for every swept system and temperature."""
    from .experiment import experiment_for
    from .state_point import state_point_temperatures, temperature_key

    settings = config["validation"]["state_point"]
    from .pool_config import pool_top_temperature

    temperatures = state_point_temperatures(config["validation"], pool_top_temperature(config))
    for system in config["sweep"]["systems"]:
        try:
            entry = experiment_for(system, config["systems"][system])
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if settings["density_source"] == "experiment" and (entry is None or "density_g_cm3" not in entry):
            raise ConfigError(
                f"validation.state_point.density_source: experiment, but systems.{system} has no experimental "
                f"density (set systems.{system}.experiment or another density_source)"
            )
        if settings["density_source"] == "configured":
            if not settings["source"]:
                raise ConfigError("validation.state_point.source: say where the configured densities come from")
            table = settings["densities_g_cm3"].get(system, {})
            missing = [temperature_key(t) for t in temperatures if temperature_key(t) not in table]
            if missing:
                raise ConfigError(f"validation.state_point.densities_g_cm3.{system}: no density for {missing} K")
