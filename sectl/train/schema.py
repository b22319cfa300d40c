"""The typed schema of a training configuration: one pydantic model per section of ``presets/base.yaml``.

Why pydantic: it validates nested data with precise, located errors and converts YAML scalars
carefully, which a hand-written checker did not (keys whose default is ``null`` skipped the type
check, so ``--set model.hidden=wide`` ended in a traceback). Presets stay YAML diffs and the resolved
configuration stays a plain dict (``model_dump``), saved as plain YAML in each run.

Model arguments are validated against the chosen architecture: the ``model.hidden``/``depth``/
``bottleneck``/``causal`` shortcuts must be arguments of that architecture, and ``model.args`` (any
constructor argument, e.g. MaskNet's ``n_fft``) is checked against the architecture's config
dataclass field by field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union, get_origin, get_type_hints

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from sectl.errors import ConfigError


def _number(value: Any) -> Any:
    """Ints and floats, and numeric strings (YAML 1.1 reads ``1e-3`` as a string); never booleans."""
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "expected float")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise PydanticCustomError("float_type", "expected float") from None
    return value


Float = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]
Int = Annotated[int, Strict()]
Positive = Annotated[float, BeforeValidator(_number), Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, BeforeValidator(_number), Field(ge=0, le=1)]
Count = Annotated[int, Strict(), Field(ge=1)]
NonNegative = Annotated[int, Strict(), Field(ge=0)]
Bool = Annotated[bool, Strict()]
Folders = Optional[Union[str, list[str]]]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(Section):
    name: str = "demucs"
    size: Optional[str] = "small"
    hidden: Optional[Int] = None
    depth: Optional[Int] = None
    bottleneck: Optional[Literal["lstm", "conv"]] = None
    causal: Optional[Bool] = None
    args: dict[str, Any] = {}

    @model_validator(mode="after")
    def _fits_the_architecture(self) -> "ModelSection":
        from sectl.models import ARCHITECTURE_SIZES, CODEC_SIZES, MODEL_CLASSES

        if self.name not in MODEL_CLASSES:
            raise PydanticCustomError("architecture", f"model.name: unknown architecture {self.name!r}; known: {', '.join(MODEL_CLASSES)}")
        sizes = {**ARCHITECTURE_SIZES, **CODEC_SIZES}[self.name]
        if self.size is not None and self.size not in sizes:
            raise PydanticCustomError("size", f"model.size: {self.size!r} is not a size of {self.name}; known: {', '.join(sizes)}")
        config_class = MODEL_CLASSES[self.name].config_class
        types = get_type_hints(config_class)
        for key in ("hidden", "depth", "bottleneck", "causal"):
            if getattr(self, key) is not None and key not in types:
                raise PydanticCustomError("argument", f"model.{key}: {self.name} has no argument {key!r}")
        for key, value in self.args.items():
            if key not in types:
                raise PydanticCustomError(
                    "argument", f"model.args.{key}: {self.name} has no argument {key!r}; its arguments: {', '.join(types)}"
                )
            try:
                TypeAdapter(types[key]).validate_python(value, strict=True)
            except ValidationError:
                raise PydanticCustomError(
                    "argument", f"model.args.{key}: expected {_type_name(types[key])} for {self.name}, got {value!r}"
                ) from None
        return self


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) if get_origin(annotation) is None else str(annotation)


class DataSection(Section):
    clean: Folders = None
    noise: Folders = None
    rir: Folders = None
    noisy: Folders = None
    segment_s: Positive = 2.0
    snr_db: tuple[Float, Float] = (-5.0, 20.0)
    gain_db: tuple[Float, Float] = (-20.0, 0.0)
    rir_prob: Fraction = 0.3
    noise_filter_prob: Fraction = 0.5
    workers: Union[Literal["auto"], NonNegative] = "auto"
    cache_gb: Positive = 2.0

    @model_validator(mode="after")
    def _ranges_run_upwards(self) -> "DataSection":
        for key in ("snr_db", "gain_db"):
            low, high = getattr(self, key)
            if low > high:
                raise PydanticCustomError("range", f"data.{key}: expected [low, high], got [{low:g}, {high:g}]")
        return self


class ValidationSection(Section):
    noisy: Optional[str] = None
    clean: Optional[str] = None
    every: Count = 100
    metric: str = "pesq_wb"
    metrics: list[str] = ["pesq_wb", "estoi", "si_sdr"]

    @model_validator(mode="after")
    def _known_metrics(self) -> "ValidationSection":
        from sectl.metrics.registry import METRICS

        for key, names in (("metric", [self.metric]), ("metrics", self.metrics)):
            unknown = [n for n in names if n not in METRICS]
            if unknown:
                raise PydanticCustomError("metric", f"validation.{key}: unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
        return self


class TrainSection(Section):
    steps: Count = 10000
    batch_size: Count = 16
    lr: Positive = 3e-4
    betas: tuple[Float, Float] = (0.9, 0.999)
    weight_decay: Float = 0.0
    schedule: Literal["cosine", "exponential"] = "cosine"
    warmup_steps: NonNegative = 100
    min_lr_ratio: Fraction = 0.05
    lr_decay: Annotated[float, BeforeValidator(_number), Field(gt=0, le=1)] = 0.999996
    grad_clip: Positive = 5.0
    checkpoint_every: Count = 100
    log_every: Count = 10
    device: str = "auto"
    threads: Optional[Count] = None
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    tf32: Bool = True
    deterministic: Bool = False
    compile: Bool = False
    dist_timeout_s: Annotated[float, BeforeValidator(_number), Field(gt=0)] = 1800.0
    tensorboard: Bool = False


class LossSection(Section):
    l1: Float = 1.0
    mrstft: Float = 1.0
    sisdr: Float = 0.0
    ssl: Float = 0.0
    mal: Float = 0.0
    ssl_mse: Float = 0.0
    ssl_pad: Float = 0.0
    ssl_sdtw: Float = 0.0


class SSLSection(Section):
    model: str = "wavlm_base"
    layer: Int = 6
    checkpoint: Optional[str] = None


class SSLAlignSection(Section):
    pad_range: tuple[Float, Float] = (0.02, 0.05)
    speeds: list[Float] = [0.8, 0.9, 1.0, 1.1, 1.2]
    gamma: Float = 0.1


class VAELossSection(Section):
    mrstft: Float = 1.0
    adv: Float = 0.1
    fm: Float = 2.0
    kl: Float = 1e-3


class VAESection(Section):
    loss: VAELossSection
    ema_decay: Float = 0.9999
    discriminator_width: Float = 1.0
    spectral_discriminator: Literal["cqt", "stft"] = "cqt"
    alternate: Bool = True


class DistillSection(Section):
    method: Literal["none", "tas", "jmas"] = "none"
    margin_cos: Float = 0.5
    margin_dist: Float = 0.25
    joint: Bool = True
    adaptive: Bool = True
    weight: Float = 2.5


class MALSection(Section):
    variant: Literal["frozen", "frozen-fe", "dynamic"] = "frozen"
    levels: Optional[list[Int]] = None
    weights: Optional[list[Float]] = None
    frozen_levels: Int = 2
    collapse_threshold: Float = 0.05
    growth_threshold: Float = 20.0


class TrainingConfig(Section):
    task: Literal["enhancer", "vae"] = "enhancer"
    seed: Int = 0
    init_from: Optional[str] = None
    init_required: Bool = False
    model: ModelSection
    data: DataSection
    validation: ValidationSection
    train: TrainSection
    loss: LossSection
    ssl: SSLSection
    ssl_align: SSLAlignSection
    vae: VAESection
    distill: DistillSection
    mal: MALSection


_EXPECTED = {
    "int_type": "int", "int_parsing": "int", "int_from_float": "int", "float_type": "float",
    "float_parsing": "float", "bool_type": "bool", "bool_parsing": "bool", "string_type": "str",
    "list_type": "a list", "tuple_type": "a list", "dict_type": "a mapping",
}  # fmt: skip


def validate(config: dict) -> dict:
    """The configuration checked against the schema and normalised (plain data); one clear error otherwise."""
    try:
        return TrainingConfig.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key {where!r}") from None
        if error["type"] in _EXPECTED:
            raise ConfigError(f"{where}: expected {_EXPECTED[error['type']]}, got {error['input']!r}") from None
        if error["type"] == "literal_error":
            raise ConfigError(f"{where}: expected {error['ctx']['expected']}, got {error['input']!r}") from None
        custom = error["msg"].startswith(("model.", "data.", "validation."))
        prefix = f"{where}: " if where and not custom else ""
        got = "" if custom or isinstance(error.get("input"), dict) else f", got {error.get('input')!r}"
        raise ConfigError(f"{prefix}{error['msg'][0].lower()}{error['msg'][1:]}{got}") from None
