"""``labelling.cp2k`` outside the workflow: checked against the schema and completed with its defaults.

The workflow validates the whole configuration when it parses it and hands the label jobs complete settings;
scripts, benchmarks and tests that build a CP2K labeller from a partial dict come here, so that they get the
same defaults (``config/schema.yaml`` is their only home) and the same one-line errors naming the key.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping

from ..config import SCHEMA, _fill_defaults  # the workflow's own default filling, so both agree
from .cp2k import CP2KLabeller


@functools.cache
def _schema() -> tuple[dict, dict]:
    """(the configuration schema, its ``labelling.cp2k`` node)."""
    import yaml

    with open(SCHEMA) as handle:
        schema = yaml.safe_load(handle)
    return schema, schema["properties"]["labelling"]["properties"]["cp2k"]


def settings_from_schema(settings: Mapping | None = None) -> dict:
    """``settings`` checked against the schema's ``labelling.cp2k`` and completed with its defaults.

    Raises ValueError naming the key (``config key labelling.cp2k.X: ...``), as the workflow does.
    """
    import jsonschema

    schema, node = _schema()
    settings = copy.deepcopy(dict(settings or {}))
    validator = jsonschema.Draft202012Validator({**node, "$defs": schema.get("$defs", {})})
    error = jsonschema.exceptions.best_match(validator.iter_errors(settings))
    if error is not None:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise ValueError(f"config key labelling.cp2k{key}: {error.message}")
    _fill_defaults(settings, node, schema)
    return settings


def labeller_from_config(settings: Mapping | None = None) -> CP2KLabeller:
    """The CP2K labeller of (possibly partial) ``labelling.cp2k`` settings."""
    return CP2KLabeller(**settings_from_schema(settings))
