"""The audit configuration: which conditions to run and the gates' thresholds, validated on load.

Sources, later overriding earlier: the built-in preset (``default`` or ``study``), then the user's
TOML (``--audit-config FILE``, or ``[tool.bias-audit]`` in the project's ``pyproject.toml``). A user
``conditions`` table replaces the preset's conditions; ``gates`` are merged gate by gate.
"""

from __future__ import annotations

import copy
import warnings
import re
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from audit.errors import ConfigError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

# how a gate decides from its interval (audit.gates.evaluate): "interval" (two-sided, the default rule),
# the named one-sided policies, or the legacy ends ("upper"/"lower" map to a one-sided policy; "point" controls no error)
Bound = Literal["interval", "fail_only_when_shown", "pass_only_when_shown", "point", "upper", "lower"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionConfig(_Strict):
    """One adaptation condition (a prompt format and how it is filled). Besides the keys below, a condition's
    table takes the few-shot composition keys the datasets declare (``Dataset.condition_knobs``), each
    validated against its declared type and readable as an attribute (``condition.pro_share``); any other key
    is an unknown config key."""

    model_config = ConfigDict(extra="allow", frozen=True)  # extra: the declared composition keys only (_composition_keys)

    description: str = ""
    format: str = "zero_shot"
    probe: Literal["likelihood", "generation"] = "likelihood"
    shots: int = Field(0, ge=0, le=64)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    preprompt: str = "none"
    preprompt_text: str | None = None
    chat: bool = False
    max_new_tokens: int = Field(32, ge=1, le=1024)
    normalization: Literal["none", "token", "char"] = "none"  # likelihood probe: summed, per-token or per-character (lm-eval acc_norm)
    # likelihood probe: average each option's log-likelihood over this many cyclic answer orders (BBQ: up to 3)
    answer_orders: int = Field(1, ge=1, le=8)
    # two-stage prompting (self-debiasing, Gallegos et al. 2024): generate under stage1_format first, then ask
    # again: stage-1 prompt + its generation + the `followup` text + this condition's question (see audit.run.conditions)
    stage1_format: str | None = None
    stage1_max_new_tokens: int = Field(48, ge=1, le=1024)
    followup: str = "none"
    # a debiasing strategy (label for the debiasing table: change against `debiasing_reference`)
    strategy: str | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _composition_keys(cls, data: Any, handler):
        """The keys above as declared; the rest must be declared composition keys, each checked against its
        type (errors read as the keys' own: 'unknown config key', or the type's message), then every declared
        key not given takes its default."""
        if not isinstance(data, dict):
            return handler(data)
        from audit.datasets import condition_knobs

        knobs = condition_knobs()
        errors: list[dict] = []
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in cls.model_fields:
                continue
            if key not in knobs:
                errors.append(dict(type="extra_forbidden", loc=(key,), input=value))
                continue
            try:
                values[key] = TypeAdapter(knobs[key].annotation).validate_python(value)
            except ValidationError as exc:
                errors += [_detail(e, (key,)) for e in exc.errors()]
        condition = None
        try:
            condition = handler({k: v for k, v in data.items() if k in cls.model_fields})
        except ValidationError as exc:
            if not errors:
                raise
            errors = [_detail(e) for e in exc.errors()] + errors
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        for key, knob in knobs.items():
            condition.__pydantic_extra__[key] = values.get(key, knob.default)
        return condition

    def composition(self, knobs: Iterable[str] | None = None) -> dict | None:
        """The shots' composition as set by the composition keys ``knobs`` (default: every declared one; None:
        no shots, or every key at its default)."""
        from audit.datasets import condition_knobs

        declared = condition_knobs()
        knobs = tuple(declared if knobs is None else knobs)
        if self.shots == 0 or all(getattr(self, k) == declared[k].default for k in knobs):
            return None
        return {k: getattr(self, k) for k in knobs}


def _detail(error: dict, prefix: tuple = ()) -> dict:  # pydantic_core.InitErrorDetails
    """A validation error re-raised with its location under ``prefix``."""
    detail = dict(type=error["type"], loc=(*prefix, *error["loc"]), input=error["input"])
    if error.get("ctx"):
        detail["ctx"] = error["ctx"]
    return detail


class GateConfig(_Strict):
    """A gate's setting; which gates exist, and what each measures, is the registry's (``audit.gates``)."""

    threshold: float = Field(ge=-1, le=1)
    bound: Bound
    rationale: str = Field(min_length=1)
    conditions: list[str] = Field(default_factory=lambda: ["*"])
    enabled: bool = True


class AuditConfig(_Strict):
    data: str = "generated"  # NAME:SOURCE, or a WinoBias source (see audit.datasets)
    split: Literal["dev", "test", "all"] = "test"  # all: both splits, each item's shots from the other (cross-fitted)
    seed: int = Field(0, ge=0)
    transfer_from: str = "intrinsic"  # the condition whose bias transfer is measured from (the bare model)
    inconclusive: Literal["fail", "warn"] = "fail"  # what an inconclusive bias gate does to the verdict and exit code
    noise_ratio: float = Field(0.5, gt=0, le=1)  # a bias gate is inconclusive when its noise floor exceeds this x its threshold
    non_minimal_pairs: bool = True  # WinoBias: O-SB also uses twins whose wording differs beyond the gendered words
    # family-wise correction of a fail: over the conditions a gate covers ("holm"), or over every gate and
    # condition of the verdict ("holm_verdict"; "two_step_verdict": the same guarantee, discounting decisions
    # shown far within their limits); docs/statistics.md, "What the whole verdict guarantees"
    correction: Literal["none", "holm", "holm_verdict", "two_step_verdict"] = "none"
    debiasing_reference: str = "zero_shot"  # the condition debiasing strategies are compared with
    confidence: float = Field(0.95, gt=0.5, lt=1)
    n_resamples: int = Field(1000, ge=100, le=100_000)
    min_items: int = Field(100, ge=1)
    max_items: int | None = Field(None, ge=2)  # audit a seeded subsample of gender twins (quick smoke runs)
    batch_size: int | Literal["auto"] = "auto"
    prompt_dirs: list[str] = Field(default_factory=list)  # the user's prompt-format directories (NAME.j2), searched first
    conditions: dict[str, ConditionConfig]
    gates: dict[str, GateConfig]

    @field_validator("conditions")
    @classmethod
    def _names(cls, conditions: dict[str, ConditionConfig]) -> dict[str, ConditionConfig]:
        if not conditions:
            raise ValueError("at least one condition is needed")
        for name in conditions:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"condition name '{name}' must be lower-case letters, digits and _")
        return conditions

    @property
    def boot(self) -> dict[str, Any]:
        """The resampling settings every interval uses (``confidence``, ``n_resamples``, ``seed``)."""
        return {"confidence": self.confidence, "n_resamples": self.n_resamples, "seed": self.seed}

    def condition_names_for(self, gate: str) -> list[str]:
        import audit.datasets  # noqa: F401  (registers each dataset's gates)
        from audit.gates import gate_spec

        wanted = self.gates[gate].conditions
        names = list(self.conditions)
        if gate_spec(gate).skips_transfer_from:
            names = [n for n in names if n != self.transfer_from]
        if gate_spec(gate).strategies_only:
            names = [n for n in names if self.conditions[n].strategy]
        return names if "*" in wanted else [n for n in names if n in wanted]


def preset_names() -> list[str]:
    """The presets the datasets ship (each dataset package's ``presets/NAME.toml``)."""
    from audit.datasets import preset_files

    return sorted(preset_files())


def preset_text(name: str) -> str:
    """A preset's TOML text; an unknown name is one clear error listing the known ones."""
    from audit.datasets import preset_files

    path = preset_files().get(name)
    if path is None:
        raise ConfigError(f"unknown config preset '{name}' (known: {', '.join(preset_names())})")
    return path.read_text(encoding="utf-8")


def _preset(name: str) -> dict:
    """A built-in preset; ``extends = "other"`` takes the other preset and overrides it."""
    data = tomllib.loads(preset_text(name))
    parent = data.pop("extends", None)
    return _merge(_preset(parent), data) if parent else data


def read_toml(path: Path, *, table: str | None = None) -> dict:
    """A TOML file's contents (or one ``[tool.x]`` table of it); one clear line on any problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    if table:
        for key in table.split("."):
            data = data.get(key, {}) if isinstance(data, dict) else {}
    return data


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if key == "gates" and isinstance(value, dict) and isinstance(merged.get("gates"), dict):
            for gate, settings in value.items():
                if isinstance(settings, dict) and isinstance(merged["gates"].get(gate), dict):
                    merged["gates"][gate] = {**merged["gates"][gate], **settings}
                else:
                    merged["gates"][gate] = settings
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _describe_error(exc: ValidationError, origin: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{origin}: unknown config key '{key}'"
    if err["type"] == "missing":
        return f"{origin}: config key '{key}' is required"
    value = err.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict) else ""
    msg = err["msg"].removeprefix("Value error, ")
    return f"{origin}: config key '{key}': {msg}{shown}"


def load_config(path: str | Path | None = None, *, preset: str | None = None, overrides: dict | None = None) -> AuditConfig:
    """The validated configuration. ``path``: a TOML file (its top level, or its ``[tool.bias-audit]``
    table when it is a ``pyproject.toml``). ``overrides``: command-line settings (e.g. ``data``).
    ``preset``: the command line's ``--preset``, which wins over the file's ``preset`` key (a
    deprecation-free rule: what is typed for this run beats what is stored); else the file's, else default."""
    user: dict[str, Any] = {}
    origin = "built-in config"
    if path is not None:
        p = Path(path)
        is_pyproject = p.name == "pyproject.toml"
        user = read_toml(p, table="tool.bias-audit" if is_pyproject else None)
        origin = f"{p} [tool.bias-audit]" if is_pyproject else str(p)
        if "preset" in user:
            stored = user.pop("preset")
            if not isinstance(stored, str):
                raise ConfigError(f"{origin}: config key 'preset': expected a preset name (known: {', '.join(preset_names())})")
            preset = preset or stored
    if "extends" in user:  # a preset's own key; a user's file names its preset with `preset`
        raise ConfigError(f"{origin}: config key 'extends' is how a built-in preset names its parent; a config file "
                          f"names its preset with preset = {user['extends']!r}")
    preset = preset or "default"
    if "baseline" in user:  # the old name of transfer_from (deprecated: "baseline" now means only an approved run)
        warnings.warn(f"{origin}: config key 'baseline' is deprecated; call it 'transfer_from'", DeprecationWarning, stacklevel=2)
        user.setdefault("transfer_from", user.pop("baseline"))
    raw = _merge(_merge(_preset(preset), user), overrides or {})
    try:
        config = AuditConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe_error(exc, origin)) from None
    if config.transfer_from not in config.conditions:
        raise ConfigError(f"{origin}: config key 'transfer_from': condition '{config.transfer_from}' is not among the conditions")
    _check_gates(config, origin)
    for directory in config.prompt_dirs:
        if not Path(directory).is_dir():
            raise ConfigError(f"{origin}: config key 'prompt_dirs': '{directory}' is not a directory")
    if any(c.strategy for c in config.conditions.values()) and config.debiasing_reference not in config.conditions:
        raise ConfigError(f"{origin}: config key 'debiasing_reference': condition '{config.debiasing_reference}' is not among "
                          "the conditions (the debiasing strategies are compared with it)")
    return config


def _check_gates(config: AuditConfig, origin: str) -> None:
    import audit.datasets  # noqa: F401  (registers each dataset's gates)
    from audit.gates import all_gates

    GATES = all_gates()
    for gate, setting in config.gates.items():
        if gate not in GATES:
            raise ConfigError(f"{origin}: config key 'gates.{gate}': unknown gate (known: {', '.join(sorted(GATES))})")
        if not GATES[gate].needs_approved_run and gate != "transfer" and setting.threshold < 0:
            raise ConfigError(f"{origin}: config key 'gates.{gate}': threshold must be between 0 and 1 (got {setting.threshold})")
        for name in setting.conditions:
            if name != "*" and name not in config.conditions:
                raise ConfigError(f"{origin}: config key 'gates.{gate}.conditions': unknown condition '{name}'")
