"""Which operations matter to which rule family, so that runtime events join static findings generically.

Ops are compared by a normalized name: lower case, no underscores, no overload (``aten.log_softmax.int`` ->
``logsoftmax``); a backward op is named by the forward op of its autograd node (``LogBackward0`` -> ``log``)."""
from __future__ import annotations

import re

LOG = frozenset({"log", "log2", "log10", "log1p", "logsoftmax", "xlogy", "specialxlogy", "logsumexp", "logsigmoid",
                 "logit", "logaddexp", "logaddexp2", "logdet", "slogdet", "nllloss", "nllloss2d", "crossentropyloss",
                 "binarycrossentropy", "kldiv", "poissonnllloss", "lgamma", "digamma"})
DIV = frozenset({"div", "divide", "truediv", "floordivide", "reciprocal", "remainder", "fmod", "mean", "nanmean",
                 "rsub", "normalize", "cosinesimilarity", "layernorm", "nativelayernorm", "nativebatchnorm",
                 "batchnorm", "groupnorm", "nativegroupnorm"})
ROOT = frozenset({"sqrt", "rsqrt", "pow", "norm", "linalgvectornorm", "linalgnorm", "frobeniusnorm", "cdist",
                  "dist", "pdist", "renorm", "cosinesimilarity", "normalize", "std", "stdmean"})  # std = sqrt(var)
DOMAIN = frozenset({"acos", "asin", "atan2", "acosh", "atanh", "arccos", "arcsin", "arctanh", "arccosh", "erfinv"})
STATS = frozenset({"std", "var", "stdmean", "varmean"}) | DIV | ROOT
EXP = frozenset({"exp", "exp2", "expm1", "pow", "cosh", "sinh", "softplus", "logsumexp", "softmax", "sigmoid",
                 "tanh", "elu", "selu", "celu", "gelu", "silu", "mish"})
ANY = None  # the family may concern any op: it matches when no more specific finding on the line does

OVERFLOW_ARITH = frozenset({"mul", "add", "sub", "matmul", "mm", "bmm", "addmm", "baddbmm", "linear", "sum",
                            "cumsum", "cumprod", "prod", "square", "mv", "einsum", "conv2d", "convolution"})

# Ops whose input tells the most about a hazard (what the evidence measures)
LOG_LIKE = frozenset({"log", "log2", "log10", "xlogy"})
DIV_LIKE = frozenset({"div", "reciprocal", "remainder", "fmod"})
ROOT_LIKE = frozenset({"sqrt", "rsqrt"})
EXP_LIKE = frozenset({"exp", "exp2", "expm1"})
SIGMOID_LIKE = frozenset({"sigmoid"})


def normalize(name: str) -> str:
    """``log_softmax`` -> ``logsoftmax``; ``LogSoftmaxBackward0`` -> ``logsoftmax``; ``_foreach_add_`` -> ``foreachadd``."""
    name = re.sub(r"Backward\d*$", "", name.split("::")[-1])
    return name.replace("_", "").lower()


def family_kinds(code: str) -> frozenset[str] | None:
    """The op names a rule code is about, or ``ANY``."""
    if not (len(code) == 6 and code.startswith("NAN") and code[3:].isdigit()):
        return ANY
    n = int(code[3:])
    if 100 <= n < 200:
        return LOG
    if 200 <= n < 210:
        return DIV
    if 210 <= n < 220:
        return ROOT
    if 220 <= n < 230:
        return DOMAIN
    if 230 <= n < 240:
        return STATS
    if 300 <= n < 350:
        return EXP | OVERFLOW_ARITH
    return ANY


def matches(code: str, op: str) -> bool | None:
    """True: the rule is about this op; False: about other ops; None: the rule may concern any op."""
    kinds = family_kinds(code)
    if kinds is ANY:
        return None
    return normalize(op) in kinds
