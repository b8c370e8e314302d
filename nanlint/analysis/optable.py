"""The op table: every op nanlint knows, in every spelling, as data.

An entry names the op's *transfer* (how its output's value follows from its inputs' values, implemented
once per family in :mod:`nanlint.analysis.transfer`), which arguments are tensors, and its *hazards*: the
domain edges where it turns finite inputs into inf or NaN, in the forward pass or only in the gradient.
Rules ask "which ops have a ``zero`` hazard on an argument?" instead of listing spellings.

Spellings: the resolver maps ``torch.f``, ``F.f``, ``torch.special.f``, ``torch.linalg.f``, ``np.f``,
``math.f``, ``x.f()`` and ``from torch import f`` to one op name; in-place ``f_`` and ``_foreach_f`` resolve
to ``f``; :data:`ALIASES` folds the remaining synonyms (``arccos`` -> ``acos``, ``true_divide`` -> ``div``,
``clip`` -> ``clamp``, ``reduce_sum`` -> ``sum``, ``expit`` -> ``sigmoid``). Operators (``a / b``,
``a /= b``, ``-a``, ``a ** b``, ``a @ b``) are the same entries.
"""
from __future__ import annotations

from dataclasses import dataclass

# Hazard kinds: the edge an argument must not reach.
ZERO = "zero"  # exactly 0 -> inf/NaN (forward) : log, division, rsqrt, reciprocal
ZERO_GRAD = "zero-grad"  # exactly 0 -> inf gradient : sqrt, fractional pow, std
NEGATIVE = "negative"  # below 0 -> NaN : log, sqrt, fractional pow
UNIT = "unit"  # |x| >= 1 -> NaN (past) / inf gradient (at) : acos, asin, atanh
OVERFLOW = "overflow"  # large -> inf : exp, expm1, cosh, sinh, pow
MINUS_ONE = "minus-one"  # exactly -1 or below -> -inf/NaN : log1p
EMPTY = "empty"  # no element -> NaN : mean, std, var
SINGLE = "single"  # one element -> NaN : unbiased std/var
ORIGIN = "origin"  # both args 0 -> NaN gradient : atan2

# Transfer families (see transfer.py).
IDENTITY = "identity"  # casts, views, copies
DETACH = "detach"
MATH = "math"  # elementwise unary functions with known monotonicity
ACT = "activation"
PROB = "probability"  # softmax / sigmoid
LOGPROB = "logprob"  # log_softmax / logsigmoid
ARITH = "arith"  # add sub mul div pow neg abs square reciprocal
CLAMP = "clamp"
WHERE = "where"
MASKED_FILL = "masked_fill"
REDUCE = "reduce"
NORM = "norm"
SPREAD = "spread"  # std / var
COUNT = "count"
SIZE = "size"
LINEAR = "linear"  # matmul, linear, conv, einsum
NORMALIZE = "normalize"
COSINE = "cosine"
CONSTRUCT = "construct"  # zeros, ones, full, rand, randn, arange, linspace, eye, tensor
STACK = "stack"
SELECT = "select"  # masked_select, nonzero, index_select, gather, topk, sort
LOSS = "loss"
ATAN2 = "atan2"
LOGSUMEXP = "logsumexp"
XLOGY = "xlogy"
INDEX = "index"  # argmax, argsort: integer positions
BOOLEAN = "boolean"  # isnan, isfinite, any, all, comparisons as functions
HIST = "histogram"  # bincount, histc, one_hot: counts with empty bins


@dataclass(frozen=True)
class OpSpec:
    name: str
    transfer: str
    #: positional names of the tensor arguments (``input`` is the receiver of a method call)
    args: tuple[str, ...] = ("input",)
    #: (argument name, hazard kind) pairs
    hazards: tuple[tuple[str, str], ...] = ()
    #: free parameters of the transfer (the math function, bounds of the output, ...)
    params: tuple = ()

    def hazard(self, kind: str) -> str | None:
        """The argument that must not reach ``kind``'s edge, if this op has that hazard."""
        for arg, k in self.hazards:
            if k == kind:
                return arg
        return None

    def param(self, key: str, default=None):
        for k, v in self.params:
            if k == key:
                return v
        return default


def _op(name, transfer, args=("input",), hazards=(), **params) -> OpSpec:
    return OpSpec(name, transfer, tuple(args), tuple(hazards), tuple(sorted(params.items())))


_X = ("input",)
_XY = ("input", "other")

OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        # ---- logarithms and roots ----
        _op("log", MATH, hazards=(("input", ZERO), ("input", NEGATIVE)), fn="log"),
        _op("log2", MATH, hazards=(("input", ZERO), ("input", NEGATIVE)), fn="log2"),
        _op("log10", MATH, hazards=(("input", ZERO), ("input", NEGATIVE)), fn="log10"),
        _op("log1p", MATH, hazards=(("input", MINUS_ONE),), fn="log1p"),
        _op("sqrt", MATH, hazards=(("input", NEGATIVE), ("input", ZERO_GRAD)), fn="sqrt"),
        _op("rsqrt", MATH, hazards=(("input", ZERO), ("input", NEGATIVE)), fn="rsqrt"),
        _op("cbrt", MATH, hazards=(("input", ZERO_GRAD),), fn="cbrt"),
        _op("reciprocal", MATH, hazards=(("input", ZERO),), fn="reciprocal"),
        _op("logit", MATH, hazards=(("input", ZERO), ("input", UNIT)), fn="logit"),
        _op("xlogy", XLOGY, args=("input", "other")),
        _op("entr", MATH, fn="entr"),
        # ---- exponentials ----
        _op("exp", MATH, hazards=(("input", OVERFLOW),), fn="exp"),
        _op("exp2", MATH, hazards=(("input", OVERFLOW),), fn="exp2"),
        _op("expm1", MATH, hazards=(("input", OVERFLOW),), fn="expm1"),
        _op("cosh", MATH, hazards=(("input", OVERFLOW),), fn="cosh"),
        _op("sinh", MATH, hazards=(("input", OVERFLOW),), fn="sinh"),
        _op("logsumexp", LOGSUMEXP),
        _op("logaddexp", LOGSUMEXP, args=_XY),
        # ---- inverse trigonometry ----
        _op("acos", MATH, hazards=(("input", UNIT),), fn="acos"),
        _op("asin", MATH, hazards=(("input", UNIT),), fn="asin"),
        _op("atanh", MATH, hazards=(("input", UNIT),), fn="atanh"),
        _op("acosh", MATH, fn="acosh"),
        _op("atan", MATH, fn="atan"),
        _op("atan2", ATAN2, args=_XY, hazards=(("input", ORIGIN),)),
        _op("erfinv", MATH, hazards=(("input", UNIT),), fn="erfinv"),
        # ---- bounded functions ----
        _op("sin", MATH, fn="sin"),
        _op("cos", MATH, fn="cos"),
        _op("tan", MATH, fn="tan"),
        _op("tanh", MATH, fn="tanh"),
        _op("erf", MATH, fn="erf"),
        _op("erfc", MATH, fn="erfc"),
        _op("sign", MATH, fn="sign"),
        _op("sgn", MATH, fn="sign"),
        _op("floor", MATH, fn="floor"),
        _op("ceil", MATH, fn="ceil"),
        _op("round", MATH, fn="round"),
        _op("trunc", MATH, fn="trunc"),
        _op("frac", MATH, fn="frac"),
        _op("lgamma", MATH, fn="lgamma"),
        _op("digamma", MATH, fn="digamma"),
        # ---- activations ----
        _op("relu", ACT, fn="relu"),
        _op("relu6", ACT, fn="relu6"),
        _op("gelu", ACT, fn="gelu"),
        _op("silu", ACT, fn="silu"),
        _op("mish", ACT, fn="mish"),
        _op("elu", ACT, fn="elu"),
        _op("selu", ACT, fn="selu"),
        _op("celu", ACT, fn="elu"),
        _op("leaky_relu", ACT, fn="leaky"),
        _op("prelu", ACT, fn="leaky"),
        _op("rrelu", ACT, fn="leaky"),
        _op("hardswish", ACT, fn="hardswish"),
        _op("hardtanh", ACT, fn="hardtanh"),
        _op("softsign", ACT, fn="softsign"),
        _op("softplus", ACT, fn="softplus"),
        _op("hardsigmoid", PROB, fn="hardsigmoid"),
        _op("sigmoid", PROB, fn="sigmoid"),
        _op("softmax", PROB, fn="softmax"),
        _op("softmin", PROB, fn="softmax"),
        _op("gumbel_softmax", PROB, fn="softmax"),
        _op("log_softmax", LOGPROB),
        _op("logsigmoid", LOGPROB),
        # ---- arithmetic (operators and their method/function spellings) ----
        _op("add", ARITH, args=_XY, fn="add"),
        _op("sub", ARITH, args=_XY, fn="sub"),
        _op("rsub", ARITH, args=_XY, fn="rsub"),
        _op("mul", ARITH, args=_XY, fn="mul"),
        _op("div", ARITH, args=_XY, hazards=(("other", ZERO),), fn="div"),
        _op("floor_divide", ARITH, args=_XY, fn="floordiv"),
        _op("remainder", ARITH, args=_XY, fn="mod"),
        _op("fmod", ARITH, args=_XY, fn="mod"),
        _op("pow", ARITH, args=("input", "exponent"), hazards=(("input", ZERO), ("input", ZERO_GRAD), ("input", NEGATIVE), ("input", OVERFLOW)), fn="pow"),
        _op("float_power", ARITH, args=("input", "exponent"), hazards=(("input", ZERO), ("input", ZERO_GRAD), ("input", NEGATIVE)), fn="pow"),
        _op("neg", ARITH, fn="neg"),
        _op("abs", ARITH, fn="abs"),
        _op("square", ARITH, fn="square"),
        _op("addcmul", ARITH, args=("input", "tensor1", "tensor2"), fn="addcmul"),
        _op("addcdiv", ARITH, args=("input", "tensor1", "tensor2"), hazards=(("tensor2", ZERO),), fn="addcdiv"),
        _op("lerp", ARITH, args=("input", "end", "weight"), fn="lerp"),
        _op("hypot", ARITH, args=_XY, fn="hypot"),
        _op("matmul", LINEAR, args=_XY),
        _op("mm", LINEAR, args=_XY),
        _op("bmm", LINEAR, args=_XY),
        _op("mv", LINEAR, args=_XY),
        _op("dot", LINEAR, args=_XY),
        _op("vdot", LINEAR, args=_XY),
        _op("inner", LINEAR, args=_XY),
        _op("outer", LINEAR, args=_XY),
        _op("tensordot", LINEAR, args=_XY),
        _op("einsum", LINEAR, args=()),
        _op("linear", LINEAR, args=("input", "weight")),
        _op("bilinear", LINEAR, args=("input1", "input2")),
        _op("conv1d", LINEAR, args=("input", "weight")),
        _op("conv2d", LINEAR, args=("input", "weight")),
        _op("conv3d", LINEAR, args=("input", "weight")),
        _op("conv_transpose1d", LINEAR, args=("input", "weight")),
        _op("conv_transpose2d", LINEAR, args=("input", "weight")),
        _op("baddbmm", LINEAR, args=("input", "batch1", "batch2")),
        _op("addmm", LINEAR, args=("input", "mat1", "mat2")),
        _op("embedding", LINEAR, args=("input", "weight")),
        _op("scaled_dot_product_attention", LINEAR, args=("query", "key", "value")),
        _op("interpolate", IDENTITY),
        _op("avg_pool1d", IDENTITY),
        _op("avg_pool2d", IDENTITY),
        _op("max_pool2d", IDENTITY),
        _op("adaptive_avg_pool2d", IDENTITY),
        _op("pad", IDENTITY),
        _op("dropout", IDENTITY),
        _op("layer_norm", ACT, fn="standardize"),
        _op("batch_norm", ACT, fn="standardize"),
        _op("group_norm", ACT, fn="standardize"),
        _op("instance_norm", ACT, fn="standardize"),
        _op("rms_norm", ACT, fn="standardize"),
        # ---- clamps and selections of values ----
        _op("clamp", CLAMP, args=("input", "min", "max")),
        _op("clamp_min", CLAMP, args=("input", "min")),
        _op("clamp_max", CLAMP, args=("input", "max")),
        _op("maximum", CLAMP, args=_XY, side="min"),
        _op("minimum", CLAMP, args=_XY, side="max"),
        _op("fmax", CLAMP, args=_XY, side="min"),
        _op("fmin", CLAMP, args=_XY, side="max"),
        _op("threshold", CLAMP, args=("input", "threshold", "value"), side="threshold"),
        _op("nan_to_num", IDENTITY),
        _op("where", WHERE, args=("condition", "input", "other")),
        _op("masked_fill", MASKED_FILL, args=("input", "mask", "value")),
        _op("masked_scatter", IDENTITY),
        _op("index_fill", IDENTITY),
        # ---- reductions ----
        _op("sum", REDUCE, fn="sum"),
        _op("nansum", REDUCE, fn="sum"),
        _op("cumsum", REDUCE, fn="cumsum"),
        _op("mean", REDUCE, hazards=(("input", EMPTY),), fn="mean"),
        _op("nanmean", REDUCE, hazards=(("input", EMPTY),), fn="mean"),
        _op("max", REDUCE, fn="max"),
        _op("amax", REDUCE, fn="max"),
        _op("nanmax", REDUCE, fn="max"),
        _op("min", REDUCE, fn="min"),
        _op("amin", REDUCE, fn="min"),
        _op("nanmin", REDUCE, fn="min"),
        _op("aminmax", REDUCE, fn="aminmax"),
        _op("median", REDUCE, hazards=(("input", EMPTY),), fn="median"),
        _op("nanmedian", REDUCE, fn="median"),
        _op("quantile", REDUCE, fn="median"),
        _op("prod", REDUCE, fn="prod"),
        _op("cumprod", REDUCE, fn="prod"),
        _op("norm", NORM),
        _op("vector_norm", NORM),
        _op("matrix_norm", NORM),
        _op("frobenius_norm", NORM),
        _op("nuclear_norm", NORM),
        _op("dist", NORM, args=_XY, fn="distance"),
        _op("cdist", NORM, args=("x1", "x2"), fn="distance"),
        _op("pdist", NORM, fn="pdist"),
        _op("pairwise_distance", NORM, args=("x1", "x2"), fn="eps-distance"),
        _op("std", SPREAD, hazards=(("input", SINGLE), ("input", ZERO_GRAD)), fn="std"),
        _op("var", SPREAD, hazards=(("input", SINGLE),), fn="var"),
        _op("nanstd", SPREAD, fn="std"),
        _op("nanvar", SPREAD, fn="var"),
        _op("std_mean", SPREAD, hazards=(("input", SINGLE),), fn="std_mean"),
        _op("var_mean", SPREAD, hazards=(("input", SINGLE),), fn="var_mean"),
        _op("count_nonzero", COUNT),
        _op("numel", SIZE, fn="numel"),
        _op("nelement", SIZE, fn="numel"),
        _op("len", SIZE, fn="len"),
        _op("size", SIZE, fn="size"),
        _op("dim", SIZE, fn="dim"),
        _op("ndimension", SIZE, fn="dim"),
        _op("bincount", HIST),
        _op("histc", HIST),
        _op("histogram", HIST),
        _op("one_hot", HIST, fn="one_hot"),
        _op("scatter_add", HIST, args=("input", "dim", "index", "src"), fn="scatter"),
        _op("index_add", HIST, args=("input", "dim", "index", "source"), fn="scatter"),
        _op("scatter_reduce", HIST, args=("input", "dim", "index", "src"), fn="scatter"),
        _op("argmax", INDEX),
        _op("argmin", INDEX),
        _op("argsort", INDEX),
        _op("nonzero", SELECT, fn="nonzero"),
        _op("argwhere", SELECT, fn="nonzero"),
        _op("masked_select", SELECT, args=("input", "mask"), fn="masked"),
        _op("index_select", SELECT, fn="subset"),
        _op("gather", SELECT, fn="subset"),
        _op("take_along_dim", SELECT, fn="subset"),
        _op("topk", SELECT, fn="topk"),
        _op("sort", SELECT, fn="sorted"),
        _op("kthvalue", SELECT, fn="sorted"),
        _op("msort", SELECT, fn="subset"),
        _op("cummax", SELECT, fn="sorted"),
        _op("unique", SELECT, fn="unique"),
        _op("unique_consecutive", SELECT, fn="unique"),
        _op("diagonal", SELECT, fn="subset"),
        _op("diag", SELECT, fn="subset"),
        _op("trace", REDUCE, fn="sum"),
        _op("det", MATH, fn="det"),
        _op("logdet", MATH, hazards=(("input", ZERO), ("input", NEGATIVE)), fn="log"),
        _op("slogdet", IDENTITY),
        # ---- vectors ----
        _op("normalize", NORMALIZE),
        _op("cosine_similarity", COSINE, args=("x1", "x2")),
        # ---- constructors ----
        _op("zeros", CONSTRUCT, args=(), fn="zeros"),
        _op("zeros_like", CONSTRUCT, fn="zeros"),
        _op("new_zeros", CONSTRUCT, fn="zeros"),
        _op("ones", CONSTRUCT, args=(), fn="ones"),
        _op("ones_like", CONSTRUCT, fn="ones"),
        _op("new_ones", CONSTRUCT, fn="ones"),
        _op("full", CONSTRUCT, args=("size", "fill_value"), fn="full"),
        _op("full_like", CONSTRUCT, args=("input", "fill_value"), fn="full"),
        _op("new_full", CONSTRUCT, args=("size", "fill_value"), fn="full"),
        _op("fill", CONSTRUCT, args=("input", "value"), fn="fill"),
        _op("zero", CONSTRUCT, fn="zeros"),
        _op("empty", CONSTRUCT, args=(), fn="empty"),
        _op("empty_like", CONSTRUCT, fn="empty"),
        _op("new_empty", CONSTRUCT, fn="empty"),
        _op("rand", CONSTRUCT, args=(), fn="rand"),
        _op("rand_like", CONSTRUCT, fn="rand"),
        _op("uniform", CONSTRUCT, fn="uniform"),
        _op("random_sample", CONSTRUCT, args=(), fn="rand"),
        _op("randn", CONSTRUCT, args=(), fn="randn"),
        _op("randn_like", CONSTRUCT, fn="randn"),
        _op("normal", CONSTRUCT, fn="randn"),
        _op("standard_normal", CONSTRUCT, args=(), fn="randn"),
        _op("randint", CONSTRUCT, args=(), fn="randint"),
        _op("randperm", CONSTRUCT, args=(), fn="arange"),
        _op("exponential", CONSTRUCT, fn="exponential"),
        _op("bernoulli", CONSTRUCT, fn="bernoulli"),
        _op("multinomial", INDEX),
        _op("arange", CONSTRUCT, args=("start", "end", "step"), fn="arange"),
        _op("range", CONSTRUCT, args=("start", "end", "step"), fn="arange"),
        _op("linspace", CONSTRUCT, args=("start", "end", "steps"), fn="linspace"),
        _op("logspace", CONSTRUCT, args=("start", "end", "steps"), fn="logspace"),
        _op("eye", CONSTRUCT, args=(), fn="eye"),
        _op("tensor", CONSTRUCT, args=("data",), fn="tensor"),
        _op("as_tensor", CONSTRUCT, args=("data",), fn="tensor"),
        _op("asarray", CONSTRUCT, args=("data",), fn="tensor"),
        _op("array", CONSTRUCT, args=("data",), fn="tensor"),
        _op("from_numpy", CONSTRUCT, args=("data",), fn="tensor"),
        _op("scalar_tensor", CONSTRUCT, args=("data",), fn="tensor"),
        _op("new_tensor", CONSTRUCT, args=("data",), fn="tensor"),
        _op("Parameter", CONSTRUCT, args=("data",), fn="parameter"),
        _op("float", IDENTITY, fn="float"),
        # ---- structure ----
        _op("stack", STACK, args=("tensors",)),
        _op("cat", STACK, args=("tensors",)),
        _op("concat", STACK, args=("tensors",)),
        _op("concatenate", STACK, args=("tensors",)),
        _op("hstack", STACK, args=("tensors",)),
        _op("vstack", STACK, args=("tensors",)),
        _op("meshgrid", STACK, args=("tensors",), fn="grid"),
        _op("detach", DETACH),
        _op("item", DETACH),
        _op("tolist", DETACH),
        _op("numpy", DETACH),
        _op("cpu", IDENTITY),
        _op("isnan", BOOLEAN),
        _op("isinf", BOOLEAN),
        _op("isfinite", BOOLEAN),
        _op("isclose", BOOLEAN),
        _op("any", BOOLEAN),
        _op("all", BOOLEAN),
        _op("eq", BOOLEAN, args=_XY),
        _op("ne", BOOLEAN, args=_XY),
        _op("gt", BOOLEAN, args=_XY),
        _op("ge", BOOLEAN, args=_XY),
        _op("lt", BOOLEAN, args=_XY),
        _op("le", BOOLEAN, args=_XY),
        _op("logical_and", BOOLEAN),
        _op("logical_or", BOOLEAN),
        _op("logical_not", BOOLEAN),
        _op("bool", BOOLEAN),
        # ---- losses (their inputs are checked by the NAN4xx rules; outputs are non-negative) ----
        _op("cross_entropy", LOSS, args=("input", "target")),
        _op("nll_loss", LOSS, args=("input", "target")),
        _op("binary_cross_entropy", LOSS, args=("input", "target")),
        _op("binary_cross_entropy_with_logits", LOSS, args=("input", "target")),
        _op("mse_loss", LOSS, args=("input", "target")),
        _op("l1_loss", LOSS, args=("input", "target")),
        _op("smooth_l1_loss", LOSS, args=("input", "target")),
        _op("kl_div", LOSS, args=("input", "target")),
    )
}

# Methods that only change dtype, device, layout or view: the value's facts carry over.
IDENTITY_METHODS = frozenset({
    "double", "half", "bfloat16", "to", "type", "type_as", "clone", "contiguous", "cuda", "view", "view_as", "reshape",
    "reshape_as", "squeeze", "unsqueeze", "permute", "transpose", "t", "flatten", "unflatten", "expand", "expand_as",
    "repeat", "narrow", "flip", "fliplr", "roll", "movedim", "moveaxis", "swapaxes", "swapdims", "chunk", "split",
    "unbind", "select", "tile", "triu", "tril", "broadcast_to", "atleast_1d", "atleast_2d", "repeat_interleave",
    "requires_grad_", "astype", "copy", "ravel", "squeeze_", "unsqueeze_", "rot90", "pin_memory", "share_memory_",
    "coalesce", "to_dense", "float32", "float64", "real", "conj", "resolve_conj", "resolve_neg", "clone_", "cumulative",
})

ALIASES = {
    "arccos": "acos", "arcsin": "asin", "arctanh": "atanh", "arctan": "atan", "arctan2": "atan2", "arccosh": "acosh",
    "absolute": "abs", "fabs": "abs", "negative": "neg", "true_divide": "div", "divide": "div", "multiply": "mul",
    "subtract": "sub", "power": "pow", "clip": "clamp", "clip_by_value": "clamp", "expit": "sigmoid",
    "reduce_sum": "sum", "reduce_mean": "mean", "reduce_max": "max", "reduce_min": "min", "reduce_prod": "prod",
    "reduce_std": "std", "reduce_variance": "var", "reduce_logsumexp": "logsumexp", "concat": "cat",
    "square_": "square", "greater": "gt", "less": "lt", "equal": "eq", "not_equal": "ne", "greater_equal": "ge",
    "less_equal": "le", "Softmax": "softmax", "Sigmoid": "sigmoid", "log_sigmoid": "logsigmoid",
    "special_expit": "sigmoid", "linalg_norm": "norm", "frombuffer": "tensor", "nan_to_num_": "nan_to_num",
    "true_divide_": "div", "mean_": "mean", "relu_": "relu", "softplus_": "softplus",
    "float64": "float", "float32": "float", "Tensor": "tensor", "FloatTensor": "tensor", "LongTensor": "tensor",
    "fix": "trunc", "rint": "round", "around": "round", "cumulative_sum": "cumsum", "ptp": "range_of",
    "clamp_min_": "clamp_min", "pairwise_distances": "cdist", "xlog1py": "xlogy",
}

# nn.Module classes: what calling an instance does (``nn.Softmax(dim=1)(x)`` is ``softmax(x)``).
MODULE_OPS = {
    "Softmax": "softmax", "Softmin": "softmin", "Softmax2d": "softmax", "LogSoftmax": "log_softmax",
    "Sigmoid": "sigmoid", "LogSigmoid": "logsigmoid", "Hardsigmoid": "hardsigmoid", "Tanh": "tanh",
    "Hardtanh": "hardtanh", "ReLU": "relu", "ReLU6": "relu6", "GELU": "gelu", "SiLU": "silu", "Mish": "mish",
    "ELU": "elu", "SELU": "selu", "CELU": "elu", "LeakyReLU": "leaky_relu", "PReLU": "leaky_relu",
    "Softplus": "softplus", "Softsign": "softsign", "Hardswish": "hardswish", "Identity": "identity",
    "Dropout": "identity", "Flatten": "identity", "Unflatten": "identity", "CosineSimilarity": "cosine_similarity",
    "PairwiseDistance": "pairwise_distance", "LayerNorm": "layer_norm", "BatchNorm1d": "batch_norm",
    "BatchNorm2d": "batch_norm", "BatchNorm3d": "batch_norm", "GroupNorm": "group_norm", "RMSNorm": "rms_norm",
    "InstanceNorm2d": "instance_norm",
}
# nn.Module classes whose output is a dense activation of learned weights.
LEARNED_MODULES = frozenset({
    "Linear", "Bilinear", "LazyLinear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "ConvTranspose3d", "Embedding", "EmbeddingBag", "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell",
    "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer",
})
LOSS_MODULES = {
    "BCELoss": "binary_cross_entropy", "BCEWithLogitsLoss": "binary_cross_entropy_with_logits",
    "CrossEntropyLoss": "cross_entropy", "NLLLoss": "nll_loss", "MSELoss": "mse_loss", "L1Loss": "l1_loss",
    "SmoothL1Loss": "smooth_l1_loss", "KLDivLoss": "kl_div", "HuberLoss": "smooth_l1_loss",
}


def canonical(op: str) -> str:
    """The op name a spelling means: ``div_`` -> ``div``, ``_foreach_div`` -> ``div``, ``arccos`` -> ``acos``."""
    if op.startswith("_foreach_"):
        op = op[len("_foreach_"):]
    if op.startswith("special_"):
        op = op[len("special_"):]
    if len(op) > 1 and op.endswith("_") and not op.endswith("__"):
        op = op[:-1]
    return ALIASES.get(op, op)


def lookup(op: str) -> OpSpec | None:
    return OPS.get(canonical(op))


def ops_with(kind: str) -> frozenset[str]:
    """The op names with a ``kind`` hazard (for rule triggers and docs)."""
    return frozenset(name for name, spec in OPS.items() if spec.hazard(kind) is not None)
