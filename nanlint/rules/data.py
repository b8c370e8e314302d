"""NAN6xx: inputs the model was never meant to see (raw 0-255 pixels, unscaled features) and initial weights
large enough to saturate the activations from the first step."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.analysis.syntax import arg, literal_value
from nanlint.findings import Confidence
from nanlint.rules import _context as C
from nanlint.rules.base import Rule
from nanlint.rules._context import FamilyRule

# calls that return uint8 images (0..255)
IMAGE_READERS = frozenset({"read_image", "decode_image", "decode_jpeg", "decode_png", "imread", "pil_to_tensor", "PILToTensor", "imdecode"})
# conversions to float that keep the 0..255 values
FLOAT_METHODS = frozenset({"float", "double", "half"})
FLOAT_DTYPES = re.compile(r"float(16|32|64)?\b|FloatTensor|\bdouble\b|\bfloat\b")
# anything in the function that rescales or normalizes the values
SCALING = re.compile(
    r"/\s*255|255\.0?\s*\)|div_?\(\s*255|\*\s*\(?\s*1\.?0?\s*/\s*255|normaliz|Normalize|ConvertImageDtype|convert_image_dtype|"
    r"to_dtype|scale\s*=\s*True|(?<!PIL)ToTensor|(?<!pil_)to_tensor|preprocess|processor|transform|standardi[sz]e|\bmean\b|\bstd\b|/\s*127\.5|-\s*127\.5|/\s*\(?\s*\d",
    re.I,
)
# steps through which an image stays an image
PASS_THROUGH = frozenset({
    "permute", "unsqueeze", "squeeze", "transpose", "contiguous", "to", "cuda", "cpu", "view", "reshape", "flip",
    "from_numpy", "as_tensor", "tensor", "array", "asarray", "ascontiguousarray", "clone", "detach", "copy", "expand_dims",
    "cvtColor", "resize", "stack",
})


class Uint8ImageToFloat(FamilyRule):
    """NAN601: a uint8 image converted to float without scaling to [0, 1] or normalizing."""

    code = "NAN601"
    triggers = ("read_image", "decode_", "imread", "pil_to_tensor", "PILToTensor", "imdecode", "open(")

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in CONVERSIONS:
            return
        subject = self._float_conversion(node)
        if subject is None:
            return
        reader = self._image_source(subject, 0)
        if reader is None:
            return
        if SCALING.search(C.function_text(self.ctx, self.ctx.current_function)):
            return
        function = self.ctx.current_function
        names = f"{function.name.value if function else ''} {self.ctx.code_for(subject)}"
        if NOT_AN_IMAGE.search(names):
            return  # depth, disparity, flow and label maps are read as images but are not model inputs
        self.report(
            node,
            f"uint8 image from `{C.call_name(reader)}` (line {self.ctx.line_of(reader)}) converted to float without "
            "scaling: the model sees values up to 255, activations and logits grow far past their trained range and "
            "`exp`/softmax inside the model overflow",
            confidence=Confidence.MEDIUM,
            hint="divide by 255 (or use `ConvertImageDtype(torch.float)` / `v2.ToDtype(torch.float32, scale=True)`) and normalize",
        )

    def _float_conversion(self, node: cst.Call) -> cst.BaseExpression | None:
        """The tensor/array converted to float by ``node``, if it is such a conversion."""
        target = self.target(node)
        if target.namespace == "method" and target.receiver is not None:
            if target.op in FLOAT_METHODS and not node.args:
                return target.receiver
            if target.op in ("to", "type", "astype") and node.args:
                dtype = C.keyword(node, "dtype") or arg(node, 0)
                if dtype is not None and FLOAT_DTYPES.search(self.ctx.code_for(dtype)):
                    return target.receiver
            return None
        if target.op in ("tensor", "as_tensor", "array", "asarray", "FloatTensor") and target.namespace in ("torch", "numpy", "other"):
            dtype = C.keyword(node, "dtype")
            if target.op == "FloatTensor" or (dtype is not None and FLOAT_DTYPES.search(self.ctx.code_for(dtype))):
                return arg(node, 0)
        return None

    def _image_source(self, expr: cst.BaseExpression | None, depth: int) -> cst.Call | None:
        """The uint8 image reader ``expr`` comes from, through names and shape-only steps."""
        while depth < 8 and expr is not None:
            depth += 1
            if isinstance(expr, cst.Name):
                found = C.bound_value(self, expr)
                if found is None:
                    return None
                expr = found[0]
                continue
            if isinstance(expr, cst.Subscript):
                expr = expr.value
                continue
            if isinstance(expr, cst.Call):
                name = C.call_name(expr)
                if name in IMAGE_READERS:
                    return expr
                if isinstance(expr.func, cst.Call) and C.call_name(expr.func) in IMAGE_READERS:
                    return expr  # PILToTensor()(img)
                if name in ("array", "asarray") and expr.args and "open" in self.ctx.code_for(expr.args[0].value):
                    return expr  # np.array(Image.open(path))
                if name in PASS_THROUGH:
                    func = expr.func
                    if isinstance(func, cst.Attribute) and name not in ("from_numpy", "as_tensor", "tensor", "array", "asarray", "ascontiguousarray", "stack", "expand_dims", "cvtColor", "resize"):
                        expr = func.value
                    elif expr.args:
                        first = expr.args[0].value
                        expr = first.elements[0].value if isinstance(first, (cst.List, cst.Tuple)) and first.elements else first
                    else:
                        return None
                    continue
            return None
        return None


NOT_AN_IMAGE = re.compile(r"depth|disparit|flow|mask|label|seg|target|valid|\bgt\b|_gt|gt_|annot|anno", re.I)


CONVERSIONS = FLOAT_METHODS | {"to", "type", "astype", "tensor", "as_tensor", "array", "asarray", "FloatTensor"}
UINT8_PRODUCERS = frozenset({"PILToTensor", "ToImage", "ToImageTensor", "PILToImage"})
SCALERS = frozenset({"ConvertImageDtype", "ConvertDtype", "ToTensor", "Normalize", "Lambda", "ToDtype"})


class UnscaledImageTransform(FamilyRule):
    """NAN602: a torchvision Compose that makes a uint8 tensor and never scales it."""

    code = "NAN602"
    triggers = ("PILToTensor", "ToImage", "PILToImage")

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) != "Compose" or not node.args:
            return
        steps = node.args[0].value
        if not isinstance(steps, (cst.List, cst.Tuple)):
            return
        producer: cst.Call | None = None
        unscaled_cast: cst.Call | None = None
        for element in steps.elements:
            step = element.value
            if not isinstance(step, cst.Call):
                return  # a user-defined transform object: it may scale
            name = C.call_name(step)
            if name in UINT8_PRODUCERS:
                producer = step
            elif name == "ToDtype":
                scale = C.keyword(step, "scale")
                if scale is not None and self.ctx.code_for(scale) != "False":
                    return
                unscaled_cast = step
            elif name in SCALERS:
                return
        if producer is None:
            return
        where = unscaled_cast if unscaled_cast is not None else producer
        self.report(
            where,
            f"`{C.call_name(producer)}` gives uint8 pixels in 0..255 and this Compose never scales them "
            "(no ConvertImageDtype, `ToDtype(..., scale=True)` or Normalize): the model sees values up to 255",
            confidence=Confidence.HIGH,
            hint="add `v2.ToDtype(torch.float32, scale=True)` (or `ConvertImageDtype(torch.float)`) and `Normalize(mean, std)`",
        )


TABULAR_LOADERS = frozenset({"read_csv", "read_excel", "read_parquet", "read_table", "loadtxt", "genfromtxt", "read_json", "read_feather"})
STANDARDIZE = re.compile(
    r"StandardScaler|MinMaxScaler|RobustScaler|MaxAbsScaler|Normalizer|normaliz|standardi[sz]|\.mean\(|\.std\(|scale\(|"
    r"/\s*255|preprocessing|BatchNorm|LayerNorm|QuantileTransformer|PowerTransformer",
    re.I,
)


class UnscaledTabularFeatures(FamilyRule):
    """NAN603 (preview): raw tabular features loaded and fed to a model with no standardization in the file."""

    code = "NAN603"
    triggers = ("read_csv", "read_excel", "read_parquet", "read_table", "loadtxt", "genfromtxt", "read_json", "read_feather")

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in ("tensor", "from_numpy", "FloatTensor", "as_tensor", "Tensor"):
            return
        target = self.target(node)
        if target.op not in ("tensor", "from_numpy", "FloatTensor", "as_tensor", "Tensor") or target.namespace not in ("torch", "other"):
            return
        if (target.qualname or "").split(".")[0] != "torch":
            return
        source = self._loader(arg(node, 0, "data"), 0)
        if source is None:
            return
        if C.mentions(self.ctx, "standardize", STANDARDIZE.pattern):
            return
        self.report(
            node,
            f"features loaded by `{C.call_name(source)}` (line {self.ctx.line_of(source)}) go to a tensor with no "
            "standardization anywhere in the file: features on large scales saturate activations and blow up the loss",
            confidence=Confidence.LOW,
            hint="standardize the columns (`StandardScaler`, or `(x - mean) / std` from the training split)",
        )

    def _loader(self, expr: cst.BaseExpression | None, depth: int) -> cst.Call | None:
        while depth < 6 and expr is not None:
            depth += 1
            if isinstance(expr, cst.Name):
                found = C.bound_value(self, expr)
                if found is None:
                    return None
                expr = found[0]
            elif isinstance(expr, cst.Subscript):
                expr = expr.value
            elif isinstance(expr, cst.Attribute) and expr.attr.value == "values":
                expr = expr.value
            elif isinstance(expr, cst.Call):
                name = C.call_name(expr)
                if name in TABULAR_LOADERS:
                    return expr
                if name in ("to_numpy", "astype", "drop", "dropna", "fillna", "copy", "iloc", "loc", "values"):
                    expr = expr.func.value if isinstance(expr.func, cst.Attribute) else None
                else:
                    return None
            else:
                return None
        return None


# a sigmoid/tanh applied somewhere (not gelu's "tanh" approximation)
SATURATING_USE = re.compile(r"(?<![\w.])(sigmoid|tanh)\(|\.(sigmoid|tanh)\(|\b(Sigmoid|Tanh)\(")
WEIGHT_LIKE = re.compile(r"[Ww]eight|\.data\b|[Pp]aram|kernel|\bw\b|\bW\w*")
EMBEDDING_LIKE = re.compile(r"emb|pos|token|cls|query|queries|prompt|latent|codebook|mask_token|bias|noise|prior|register", re.I)


class LargeInitStd(FamilyRule):
    """NAN604: weights initialized with std >= 1 in a model with saturating activations."""

    code = "NAN604"
    triggers = ("normal_", "normal(")
    default_options = {"max_std": 1.0}

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in ("normal_", "normal", "trunc_normal_"):
            return
        target = self.target(node)
        if target.op not in ("normal_", "normal", "trunc_normal_"):
            return
        if target.namespace == "method":
            if target.receiver is None:
                return
            tensor = target.receiver
            if not WEIGHT_LIKE.search(self.ctx.code_for(tensor)):
                return  # x.normal_() on a buffer is noise, not an initialization
            std = arg(node, 1, "std")
            default = 1.0
        elif target.namespace == "init" or (target.qualname or "").startswith("torch.nn.init"):
            tensor = arg(node, 0, "tensor")
            std = arg(node, 2, "std")
            default = 1.0
        else:
            return
        value = literal_value(std) if std is not None else default
        if value is None or value < float(self.options.get("max_std", 1.0)):
            return
        name = self.ctx.code_for(tensor) if tensor is not None else ""
        if EMBEDDING_LIKE.search(name):
            return  # embeddings and positional codes are meant to have unit scale
        scope_text = self.ctx.code_for(self.ctx.class_stack[-1]) if self.ctx.class_stack else self.ctx.source
        if not SATURATING_USE.search(scope_text):
            return  # the activations this weight feeds are not saturating ones
        self.report(
            node,
            f"weights initialized with std {value:g} in a model with sigmoid/tanh: pre-activations have std about "
            f"{value:g} * sqrt(fan_in), so the activations start saturated and their gradients vanish",
            confidence=Confidence.MEDIUM,
            hint="use `nn.init.xavier_uniform_` (Glorot) for sigmoid/tanh layers, or std = 1 / sqrt(fan_in)",
        )
