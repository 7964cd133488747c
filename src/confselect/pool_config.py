"""The pool of a configuration: named generators (``pool``), the recipes that unite them (``sweep.pools``) and
the held-out set's generators (``test``); how many frames each holds and the checks the schema cannot do.

Read at parse time (every cluster job too): nothing here imports numpy or ASE.
"""

from __future__ import annotations

import copy

from .config import SCHEMA, ConfigError, _dotted, _fill_defaults, _schema


def pool_recipes(config: dict) -> dict[str, list[str]]:
    """Pool recipe name -> its generators (``sweep.pools``; by default one recipe holding every generator,
    named after it where there is one, else ``all``)."""
    pools = config["sweep"].get("pools")
    if pools:
        return {name: list(generators) for name, generators in pools.items()}
    names = list(config["pool"])
    return {names[0] if len(names) == 1 else "all": names}


#: Generator kinds that draw random numbers (the others ignore a seed and have no seed key).
SEEDED_KINDS = ("md_ramp", "strain", "rattle", "normal_modes")


def test_generators(config: dict) -> dict[str, dict]:
    """The held-out set's generators: each pool generator with ``test.seed`` (+ k for the k-th) and the
    overrides of ``test.generators``, then the test-only ones, validated and defaults filled in."""
    overrides = config["test"].get("generators", {})
    names = [n for n in config["pool"] if not (n in overrides and overrides[n] is None)]
    names += [n for n in overrides if n not in config["pool"] and overrides[n] is not None]
    out = {}
    for k, name in enumerate(names):
        settings = {**config["pool"].get(name, {}), **(overrides.get(name) or {})}
        if settings.get("kind") in SEEDED_KINDS:
            settings["seed"] = int(config["test"]["seed"]) + k
        out[name] = validated_generator(settings, f"test.generators.{name}")
    return out


def generators(config: dict, role: str, pool: str | None = None) -> dict[str, dict]:
    """Generator name -> settings of a pool recipe (``role="pool"``, ``pool`` its name) or of the test set."""
    if role == "test":
        return test_generators(config)
    if role != "pool":
        raise ValueError(f"unknown frame set {role!r}")
    recipes = pool_recipes(config)
    names = recipes[pool] if pool is not None else list(config["pool"])
    return {name: config["pool"][name] for name in names}


def validated_generator(settings: dict, key: str, schema_path=SCHEMA) -> dict:
    """``settings`` checked against the schema's generator definition, defaults filled in (a test-set
    generator is assembled from overrides, so the schema cannot check it where it is written)."""
    import jsonschema

    schema = _schema(schema_path)
    node = {"$ref": "#/$defs/generator", "$defs": schema["$defs"]}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(node).iter_errors(settings))
    if error is not None:
        where = _dotted(error.absolute_path)
        raise ConfigError(f"config key {key}{'.' + where if error.absolute_path else ''}: {error.message}")
    settings = copy.deepcopy(settings)
    _fill_defaults(settings, node, node)
    return settings


def generator_frames(settings: dict) -> int:
    """Frames one generator makes."""
    kind = settings["kind"]
    if kind == "md_ramp":
        return int(settings["ramp_fs"] // settings["frame_interval_fs"])
    if kind == "rattle":
        return len(settings["amplitudes_A"]) * int(settings["n_per_amplitude"])
    return int(settings["n_frames"])


def n_frames(config: dict, role: str, pool: str | None = None) -> int:
    """Frames of a pool recipe (the smallest recipe's where ``pool`` is None) or of the test set."""
    if role == "pool" and pool is None:
        return min(n_frames(config, "pool", name) for name in pool_recipes(config))
    return sum(generator_frames(settings) for settings in generators(config, role, pool).values())


def pool_top_temperature(config: dict) -> float:
    """The pool's highest temperature, K: the top of every md_ramp generator's ramp (the stress run's default
    temperature); the NVT validation temperature where the pool holds no MD."""
    return pool_temperature_range(config)[1]


def pool_temperature_range(config: dict) -> list[float]:
    """[lowest, highest] temperature of the pool's MD, K: the ends of every md_ramp generator's ramp; the NVT
    validation temperature (both ends) where the pool holds no MD."""
    ends = [t for g in config["pool"].values() if g["kind"] == "md_ramp" for t in (g["T_start_K"], g["T_end_K"])]
    if not ends:
        ends = [config["validation"]["md"]["temperature_K"]]
    return [float(min(ends)), float(max(ends))]


def check_pools(config: dict) -> None:
    """Pool recipes name existing generators; the test set's generators are valid and none repeats a pool
    generator's frames exactly (a deterministic volume scan with the pool's own settings would)."""
    for recipe, names in pool_recipes(config).items():
        for i, name in enumerate(names):
            if name not in config["pool"]:
                raise ConfigError(f"sweep.pools.{recipe}[{i}]: no pool generator {name!r} (defined: {list(config['pool'])})")
    for name, settings in test_generators(config).items():
        if settings["kind"] not in SEEDED_KINDS and any(settings == g for g in config["pool"].values()):
            raise ConfigError(
                f"test.generators.{name}: the held-out {settings['kind']} repeats a pool generator's frames; give "
                f"it other settings (e.g. n_frames or linear_strain_range)"
            )
