"""Plain values the tracer produces: what happened at runtime (events, evidence) and what it concludes
(verdicts). Nothing here imports torch, so reports and tests can use them freely."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Event:
    """A non-finite value the monitor saw.

    ``kind``: ``origin`` (non-finite from finite inputs: a NaN, or an inf that is not a constant fill), ``fill``
    (a constant ±inf written on purpose, e.g. an attention mask), ``input`` (already non-finite in a tensor
    the script did not compute under the monitor: loaded data, parameters), ``error`` (the op raised an
    overflow error, e.g. a constant that does not fit the working dtype)."""

    index: int
    kind: str
    value: str  # "nan", "inf", "-inf", "+-inf"
    op: str  # aten op (forward/step) or the forward op of the autograd node (backward)
    phase: str  # forward, backward, step
    filename: str | None
    line: int | None
    node: str | None = None  # autograd node name in backward
    param: str | None = None  # parameter name for optimizer updates
    calibration: bool = False  # GradScaler overflow on a skipped step: expected
    from_inf: bool = False  # a NaN born from inputs holding inf
    message: str | None = None
    propagated: int = 0  # how many later ops carried it on (first-origin story)
    step: int = 0  # optimizer steps completed when it was born
    figures: dict = field(default_factory=dict)  # what the op was fed at birth: {"smallest |denominator|": 0.0}

    @property
    def is_bug(self) -> bool:
        if self.calibration:
            return False
        if self.kind in ("origin", "error"):
            return True
        return self.kind == "input" and self.value == "nan"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["is_bug"] = self.is_bug
        return data


@dataclass
class OpEvidence:
    """What one op at one flagged line did on this run (aggregated over calls), for NEAR-MISS / AT-RISK."""

    op: str
    phase: str
    calls: int = 0
    dtype: str | None = None
    out_min: float | None = None
    out_max: float | None = None
    min_input: float | None = None  # log, sqrt: smallest value fed
    min_pos_input: float | None = None  # log, sqrt, div: smallest positive |value| fed
    min_abs_denominator: float | None = None  # div
    max_input: float | None = None  # exp: largest exponent
    saturated_share: float | None = None  # sigmoid: share of outputs exactly 0 or 1
    max_abs_scalar: float | None = None  # constants fed to the op (masked_fill value, scale)

    @property
    def out_absmax(self) -> float | None:
        if self.out_min is None or self.out_max is None:
            return None
        return max(abs(self.out_min), abs(self.out_max))

    def merge(self, other: "OpEvidence") -> None:
        self.calls += other.calls
        self.dtype = self.dtype or other.dtype
        for name, pick in (("out_min", min), ("out_max", max), ("min_input", min), ("min_pos_input", min),
                           ("min_abs_denominator", min), ("max_input", max), ("saturated_share", max),
                           ("max_abs_scalar", max)):
            a, b = getattr(self, name), getattr(other, name)
            setattr(self, name, b if a is None else a if b is None else pick(a, b))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SiteVerdict:
    """One static finding joined with what the run showed there."""

    code: str
    name: str
    filename: str
    line: int
    column: int
    message: str
    verdict: str  # CONFIRMED, NEAR-MISS, AT-RISK, SAFE, NOT EXECUTED
    reasons: list[str] = field(default_factory=list)
    at_risk: list[str] = field(default_factory=list)  # "float16", "bfloat16"
    events: list[int] = field(default_factory=list)  # Event.index of origins born here
    evidence: list[OpEvidence] = field(default_factory=list)
    fix: str | None = None  # the finding's own fix (its autofix, else its hint)

    def to_dict(self) -> dict:
        data = asdict(self)
        return data


@dataclass
class Health:
    """Training-health figures: they matter even when the batch stays finite."""

    first_batch: dict | None = None  # {"source", "shapes", "min", "max", "absmax", "nonfinite"}
    module_outputs: dict[str, dict] = field(default_factory=dict)  # name -> {"min","max","absmax","calls"}
    grad_norms: dict[str, float] = field(default_factory=dict)  # module name -> ||grad||
    updates: list[dict] = field(default_factory=list)  # {"step","group","lr","ratio","weight_norm","update_norm"}
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
