"""The value domain: what is known of one value, and why.

A :class:`Value` is an abstract value: bounds on its elements, whether the domain edges of the ops that
consume it are *reached* on plausible inputs (exactly 0, exactly +-1, below 0 by rounding, past exp's
range...), and the provenance that says why. Evidence is what makes a rule fire, and every piece of it
carries a sentence and the node it came from, so a message can say "`n`, a count (`mask.sum()`, line 4),
is 0 for an all-False mask". Unknown stays silent: a value with no evidence reaches no edge.

Two tiers: ``PLAUSIBLE`` evidence is reached on the inputs real code sees (an empty mask, a silent clip, a
softmax that underflows); ``DEGENERATE`` only on degenerate ones (a dead ReLU layer, a gradient exactly at
an optimum). The default rules report the first; a user can ask for both.

Join (``|``, at control-flow merges) keeps the hull of the bounds and the stronger evidence of either side;
refinement (at guards) is done by :mod:`nanlint.analysis.guards` with :meth:`Value.narrowed`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any

INF = math.inf


class Tier(IntEnum):
    NONE = 0
    DEGENERATE = 1
    PLAUSIBLE = 2


@dataclass(frozen=True)
class Evidence:
    """Why a value reaches an edge: ``why`` is a phrase for messages ("a count (`mask.sum()`) is 0 for an
    all-False mask"), ``node`` where it came from, ``kind`` a tag rules branch on (count, underflow, uniform,
    empty, relu, difference, signal, rounding, fill, ...) and ``root`` the source text of the value whose
    emptiness or constancy causes it, so a guard on that value (``if mask.any():``) can clear it. ``scope`` is
    ``"row"`` when the edge is met one sample at a time (a padded row, an empty span of a mask handed in): a
    reduction or selection over the whole batch meets it only when every sample is empty at once. ``selects``
    says the op that made the edge has a backward that selects rather than multiplies (relu's threshold
    backward passes 0 wherever its input was <= 0), so an inf or NaN gradient arriving at the edge is dropped."""

    tier: Tier
    why: str
    node: Any = field(default=None, compare=False, hash=False, repr=False)
    kind: str = ""
    root: str | None = None
    scope: str = ""
    selects: bool = False

    def weaker(self, tier: Tier = Tier.DEGENERATE) -> "Evidence":
        return self if self.tier <= tier else replace(self, tier=tier)

    def over_batch(self) -> "Evidence":
        """This evidence once the whole batch is reduced or selected at once."""
        if self.scope != "row" or self.tier <= Tier.DEGENERATE:
            return self
        return replace(self, tier=Tier.DEGENERATE, scope="", why=f"{self.why} for every sample of the batch at once")


def stronger(a: Evidence | None, b: Evidence | None) -> Evidence | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if b.tier > a.tier else a


# Provenance roles: what kind of value this is, which decides how likely its reductions are to vanish.
ACTIVATION = "activation"  # a dense activation: output of a learned layer, an embedding (never all 0)
PARAMETER = "parameter"  # a learned weight
RANDOM = "random"  # a random draw (randn: never all 0; rand: [0, 1), hits 0 now and then)
DATA = "data"  # a raw input signal or image (blank, silent, padded, constant channels happen)
MASK = "mask"  # a 0/1 indicator or boolean mask (all False happens)
COUNT = "count"  # an integer count (0 happens)
SIZE = "size"  # a size or shape entry (>= 1 in practice)
PROBABILITY = "probability"  # in [0, 1], from softmax/sigmoid (underflows to 0, saturates to 1)
LOGPROB = "logprob"  # <= 0, from log_softmax/logsigmoid
INDEX = "index"  # integer positions (arange, argmax)
LITERAL = "literal"
EPS = "eps"  # a small positive constant meant as a guard
SETTING = "setting"  # a number or list of numbers the user configures (a `float` / `List[float]` parameter)


def _configured(a: "Value", b: "Value") -> str | None:
    """A setting or its constant fallback (``w if w is not None else 1.0``) is still a setting."""
    roles = {a.role, b.role}
    if SETTING in roles and (roles <= {SETTING, LITERAL} or a.const is not None or b.const is not None):
        return SETTING
    return None


@dataclass(frozen=True)
class Value:
    lo: float = -INF
    hi: float = INF
    lo_open: bool = False  # lo itself excluded
    hi_open: bool = False
    const: float | None = None  # a known scalar value
    integer: bool = False
    #: exact values reached on plausible (or degenerate) inputs: ((0.0, evidence), (1.0, evidence))
    points: tuple[tuple[float, Evidence], ...] = ()
    vanish: Evidence | None = None  # every element of a row/vector can be exactly 0 at once
    constant: Evidence | None = None  # every element of a row can be equal (std = 0, max - min = 0)
    below: Evidence | None = None  # values below 0 are reached (a real negative range, or rounding)
    beyond: Evidence | None = None  # |x| can round past 1 (a dot product of unit vectors)
    large: Evidence | None = None  # can exceed exp's range on plausible inputs (logits / temperature)
    empty: Evidence | None = None  # can hold no element (a boolean-mask selection)
    single: Evidence | None = None  # a reduced dimension can hold one element
    role: str | None = None
    grad: bool | None = None  # can carry a gradient; None: unknown
    # a Python int or float (a literal, len(), .item(), a parameter annotated int/float): dividing two of them by
    # 0 raises ZeroDivisionError, it never makes an inf or a NaN
    pynum: bool = False
    dist: bool = False  # sums to 1 along a dim (softmax): its peak is >= 1/n
    unit: bool = False  # unit-norm vectors (F.normalize)
    dtype: str | None = None  # float16, bfloat16, float32, float64, complex, int, bool
    desc: str | None = None  # how a message names this value ("a `softmax` output")
    op: str | None = None  # the op whose output this is, through casts and views ("sigmoid")
    setting: float | None = None  # a parameter's default: what it usually is, not what it must be
    node: Any = field(default=None, compare=False, hash=False, repr=False)  # where it was made
    # structure: tuples/lists/dicts of values, and nn.Module instances (what calling them does)
    items: tuple["Value", ...] | None = field(default=None, compare=False)
    entries: tuple[tuple[str, "Value"], ...] | None = field(default=None, compare=False)
    element: "Value | None" = field(default=None, compare=False)  # a sequence of such values (a list, a range)
    module: Any = field(default=None, compare=False, hash=False)  # a ModuleRef

    # ---- bounds ----
    @property
    def positive(self) -> bool:
        return self.lo > 0 or (self.lo == 0 and self.lo_open)

    @property
    def nonneg(self) -> bool:
        return self.lo >= 0

    @property
    def negative(self) -> bool:
        return self.hi < 0 or (self.hi == 0 and self.hi_open)

    @property
    def nonpos(self) -> bool:
        return self.hi <= 0

    @property
    def nonzero(self) -> bool:
        """Its bounds exclude 0 (a known sign, kept away from 0)."""
        return self.positive or self.negative or (self.const is not None and self.const != 0)

    @property
    def unit_interval(self) -> bool:
        return self.lo >= 0 and self.hi <= 1

    @property
    def bounded_above(self) -> bool:
        return self.hi < INF

    @property
    def informative(self) -> bool:
        return self.lo > -INF or self.hi < INF

    def contains(self, x: float) -> bool:
        if x < self.lo or x > self.hi:
            return False
        if x == self.lo and self.lo_open or x == self.hi and self.hi_open:
            return False
        return True

    # ---- evidence ----
    def at(self, x: float) -> Evidence | None:
        """Evidence that exactly ``x`` is reached (and it lies within the bounds)."""
        for point, evidence in self.points:
            if point == x:
                return evidence if self.contains(x) else None
        return None

    @property
    def zero(self) -> Evidence | None:
        return self.at(0.0)

    def with_point(self, x: float, evidence: Evidence | None) -> "Value":
        if evidence is None:
            return self
        kept = tuple((p, e) for p, e in self.points if p != x)
        old = self.at(x)
        return replace(self, points=kept + ((x, stronger(old, evidence)),))

    def without_point(self, x: float) -> "Value":
        return replace(self, points=tuple((p, e) for p, e in self.points if p != x))

    def evidence_at_least(self, tier: Tier) -> bool:
        return any(e is not None and e.tier >= tier for e in self._all_evidence())

    def _all_evidence(self):
        yield from (e for _, e in self.points)
        yield self.vanish
        yield self.constant
        yield self.below
        yield self.beyond
        yield self.large
        yield self.empty
        yield self.single

    # ---- construction helpers ----
    def but(self, **changes) -> "Value":
        return replace(self, **changes)

    def bounded(self, lo: float = -INF, hi: float = INF, lo_open: bool = False, hi_open: bool = False) -> "Value":
        return replace(self, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)

    def described(self, desc: str | None, node: Any = None) -> "Value":
        return replace(self, desc=desc, node=node if node is not None else self.node)

    def evidence_free(self) -> "Value":
        """The same bounds and provenance with no evidence of reaching an edge (a clamp, an eps)."""
        return replace(self, points=(), vanish=None, constant=None, below=None, beyond=None, large=None)

    def __or__(self, other: "Value") -> "Value":
        return join(self, other)


UNKNOWN = Value()


def constant(x: float, node: Any = None) -> Value:
    """A known number. 0 is reached (it *is* 0), with the kind ``literal``."""
    if isinstance(x, bool):
        x = float(x)
    if isinstance(x, complex) or x != x:  # NaN and complex constants say nothing useful
        return Value(node=node, role=LITERAL, grad=False)
    points = ((0.0, Evidence(Tier.PLAUSIBLE, "the constant 0", node, "literal")),) if x == 0 else ()
    integer = float(x).is_integer() if math.isfinite(x) else False
    role = EPS if 0 < x < 0.1 else LITERAL
    return Value(lo=x, hi=x, const=float(x), integer=integer, points=points, role=role, grad=False, node=node,
                 pynum=True)


def interval(lo: float, hi: float, **more) -> Value:
    return Value(lo=lo, hi=hi, **more)


def join(a: Value, b: Value) -> Value:
    """A value that is either ``a`` or ``b``: the hull of the bounds, the stronger evidence of each kind,
    the shared provenance."""
    if a is b:
        return a
    if a.lo < b.lo or (a.lo == b.lo and not a.lo_open):
        lo, lo_open = a.lo, a.lo_open
    else:
        lo, lo_open = b.lo, b.lo_open
    if a.hi > b.hi or (a.hi == b.hi and not a.hi_open):
        hi, hi_open = a.hi, a.hi_open
    else:
        hi, hi_open = b.hi, b.hi_open
    points = dict(a.points)
    for p, e in b.points:
        points[p] = stronger(points.get(p), e)
    # the side that brings the evidence names the value
    a_strength = max((e.tier for e in a._all_evidence() if e is not None), default=0)
    b_strength = max((e.tier for e in b._all_evidence() if e is not None), default=0)
    named = b if b_strength > a_strength else a
    return Value(
        lo=lo,
        hi=hi,
        lo_open=lo_open,
        hi_open=hi_open,
        const=a.const if a.const == b.const else None,
        integer=a.integer and b.integer,
        points=tuple(points.items()),
        vanish=stronger(a.vanish, b.vanish),
        constant=stronger(a.constant, b.constant),
        below=stronger(a.below, b.below),
        beyond=stronger(a.beyond, b.beyond),
        large=stronger(a.large, b.large),
        empty=stronger(a.empty, b.empty),
        single=stronger(a.single, b.single),
        role=a.role if a.role == b.role else _configured(a, b) or (named.role if named.evidence_at_least(Tier.DEGENERATE) else None),
        grad=join_grad(a.grad, b.grad),
        pynum=a.pynum and b.pynum,
        dist=a.dist and b.dist,
        unit=a.unit and b.unit,
        dtype=a.dtype if a.dtype == b.dtype else None,
        desc=named.desc,
        op=a.op if a.op == b.op else None,
        node=named.node,
        items=_join_items(a.items, b.items),
        entries=a.entries if a.entries == b.entries else None,
        element=join(a.element, b.element) if a.element is not None and b.element is not None else None,
        module=a.module if a.module is b.module else None,
    )


def join_grad(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is False and b is False:
        return False
    return None


def _join_items(a, b):
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(join(x, y) for x, y in zip(a, b))


def join_all(values) -> Value:
    out = None
    for v in values:
        out = v if out is None else join(out, v)
    return out if out is not None else UNKNOWN


def describe(value: Value, fallback: str = "a value") -> str:
    return value.desc or fallback
