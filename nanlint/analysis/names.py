"""What a name says about a value, when nothing else is known of it.

Used only for values the analysis cannot see into: function parameters without a caller in the file,
attributes of configuration objects (``cfg.eps``), imported helpers (``compute_amplitude``). A name is weak
evidence, so what it gives is marked ``kind="name"`` and reported with medium confidence. Kept deliberately
short: an eps is a positive guard; a mask can be all False; a raw signal or image can be silent, blank or
constant; a cosine reaches +-1; a temperature is a small positive setting.
"""
from __future__ import annotations

import re

from nanlint.analysis import domain as d
from nanlint.analysis.domain import Evidence, Tier, Value

EPS_NAME = re.compile(r"(^|_)(eps|epsilon|tiny|smooth|smoothing|stability|numerical_stab\w*|min_norm|min_std)(_|$|\d)", re.I)
MASK_NAME = re.compile(r"(^|_)(mask|masks|valid|keep|selected|is_\w+|has_\w+)(_|$)", re.I)
NOT_MASK = re.compile(r"(^|_)(attention|attn|causal|head|mask_value|mask_token|masking|mask_ratio|mask_prob|mask_length|mask_len|num_masks?|lengths?|len|size|ratios?|prob|fill|logits?|scores?|probs?|preds?|predictions?|embeds?|embeddings?|features?|feats?|tokens?|loss|weights?)(_|$)", re.I)
SIGNAL_NAME = re.compile(r"(^|_)(images?|imgs?|waveforms?|wavs?|audios?|signals?|spectrograms?|specs?|stfts?|mels?|frames?|depths?|depth_map|videos?|traces?|pixels?|intensit(y|ies)|raw|clean|noisy)(_|$|\d)", re.I)
NOT_SIGNAL = re.compile(r"(^|_)(n|nb|total|size|sizes|shape|len|length|lengths|num|count|idx|index|ids?|path|paths|name|names|file|dir|dtype|mean|std|scale|feat|feats|features|embeds?|embeddings?|encoder|decoder|processor|model|token|tokens|patch|patches|size|height|width|channels?|mask|masks|rate|sr|key|keys|logits?|scores?|preds?|predictions?|probs?|activations?|hidden|latents?|"
                        r"factor|ratios?|fps|duration|per|shapes|indices|coefficients?|steps?|ranges?)(_|$)|^(max|min)_", re.I)  # settings and limits: `video_fps`, `max_pixels`
TARGET_NAME = re.compile(r"^(gt|target|targets|y_true|ground_truth)$|^gt_|_gt$|(^|_)(gt|target)_(score|map|mask|heatmap|prob|probs)(_|$)", re.I)
ADJACENCY_NAME = re.compile(r"^(adj|adjs|adj_t|adjacency|adj_matrix|adjacency_matrix|adj_mat)$", re.I)
COORDINATE_NAME = re.compile(r"^(boxes|bboxes?|box|gt_boxes|anchors|points|pts|coords|coordinates|keypoints|kpts|vertices|verts|train_x|train_inputs|x_train|knots)$", re.I)
# counts, including the cells of a confusion matrix (true_positives, confmat): 0 for a class never predicted
COUNT_NAME = re.compile(r"(^|_)(counts?|class_counts?|per_class|frequenc(y|ies)|occurrences|histogram|hist|n_per_class|"
                        r"confusion_matri(x|ces)|confmat|conf_mat|(true|false)_(positive|negative)s?)(_|$)", re.I)
ZEROABLE_VECTOR = re.compile(r"^(omega|rotvec|rot_vec|axis_angle|aa|angle|angles|theta|translation|trans|tvec|t_vec|displacement|disp|offset|offsets|delta|deltas|shift|motion|flow|velocity|vel|residual|residuals|resid|error|errors|err|diff|difference|grad|grads|gradient|gradients)$", re.I)
PROB_NAME = re.compile(r"(^|_)(probs|probas|probabilities|softmax|sigmoid|likelihoods|posteriors?|pmf)(_|$)", re.I)
NOT_PROB = re.compile(r"(threshold|thresh|drop|dropout|keep|mask|ratio|min|max|temperature|logits?|log)", re.I)
SIGNED_SIGNAL = re.compile(r"(^|_)(waveforms?|wavs?|audios?|signals?|noisy|clean|raw)(_|$|\d)", re.I)
LOG_PROB_NAME = re.compile(r"(^|_)(log_?probs?|logps?|log_?likelihoods?|log_?pi|logprobs?|log_?p)(_|$)", re.I)
LOG_SPREAD_NAME = re.compile(r"^_*(log_?var(iance)?s?|log_?std(dev)?s?|log_?sigmas?|log_?sigma_?sq|log_?sig2?|logvar_\w+|\w+_log_?var|\w+_log_?std|\w+_log_?sigma)$", re.I)
COSINE_NAME = re.compile(r"(^|_)(cos|cosine|cos_theta|cos_sim|cosine_sim|cosine_similarity|costheta)(_|$)", re.I)
TEMPERATURE_NAME = re.compile(r"^(temperature|temp|tau|t_scale|logit_temperature)$", re.I)
BATCH_NAME = re.compile(r"^(batch|minibatch|mini_batch|data_batch|train_batch|batch_data)$", re.I)
STEP_NAME = re.compile(r"^(step|steps|global_step|current_step|cur_step|epoch|current_epoch|cur_epoch|iteration|iter|it|num_updates|step_count)$", re.I)
MOVE_CALL = re.compile(r"^(to_device|to_dtype|move_to_device|move_to|to_cuda|to_cpu|send_to_device|to_torch_device)$", re.I)
AMPLITUDE_CALL = re.compile(r"(amplitude|magnitude|energy|(^|_)rms($|_)|(^|_)peak($|_))", re.I)


def named(name: str, node) -> Value | None:
    """What ``name`` (a parameter or an attribute of an opaque object) says, or None."""
    if EPS_NAME.search(name):
        return Value(lo=0.0, lo_open=True, role=d.EPS, grad=False, node=node, desc=f"`{name}`")
    if TEMPERATURE_NAME.match(name):
        return Value(lo=0.0, lo_open=True, role=d.EPS, node=node, desc=f"`{name}`, a temperature")
    if COSINE_NAME.search(name):
        why = f"`{name}` (by its name, a cosine) is +-1 for parallel vectors"
        return Value(lo=-1.0, hi=1.0, node=node, desc=f"`{name}` (by its name, a cosine)",
                     points=((1.0, Evidence(Tier.PLAUSIBLE, why, node, "name")), (-1.0, Evidence(Tier.PLAUSIBLE, why, node, "name"))),
                     beyond=Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, a cosine) can round past +-1", node, "name"))
    if LOG_SPREAD_NAME.match(name):
        # an unbounded output, but one that passes 88.7 only once training has diverged: a symptom, not the cause
        why = f"`{name}` (by its name, a log-variance) is an unbounded output: exp of it overflows once it passes 88.7"
        return Value(node=node, desc=f"`{name}` (by its name, a log-variance)", large=Evidence(Tier.DEGENERATE, why, node, "name"))
    if LOG_PROB_NAME.search(name):
        return Value(hi=0.0, role=d.LOGPROB, node=node, desc=f"`{name}` (by its name, log-probabilities)")
    if PROB_NAME.search(name) and not NOT_PROB.search(name):
        why = f"`{name}` (by its name, probabilities) underflows to exactly 0 for unlikely outcomes"
        return Value(lo=0.0, hi=1.0, role=d.PROBABILITY, node=node, desc=f"`{name}` (by its name, probabilities)",
                     points=((0.0, Evidence(Tier.PLAUSIBLE, why, node, "name")),))
    if COUNT_NAME.search(name):
        why = f"`{name}` (by its name, counts) is 0 for a class with no sample"
        return Value(lo=0.0, integer=True, role=d.COUNT, grad=False, node=node, desc=f"`{name}` (by its name, counts)",
                     points=((0.0, Evidence(Tier.PLAUSIBLE, why, node, "name", root=name)),))
    if TARGET_NAME.search(name):
        empty = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, a target map) is all 0 for a sample with no object", node, "name", root=name)
        return Value(lo=0.0, role=d.MASK, grad=False, node=node, desc=f"`{name}` (by its name, a target)", vanish=empty)
    if ZEROABLE_VECTOR.match(name):
        zero = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, a difference, offset or rotation) is exactly 0 when nothing moved", node, "name", root=name)
        return Value(node=node, desc=f"`{name}` (by its name, a difference, offset or rotation)", vanish=zero)
    if MASK_NAME.search(name) and not NOT_MASK.search(name):
        # a mask handed in marks positions of each sample (padding, a span): one sample's row can be all False
        false = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, a mask) can be all False", node, "name", root=name, scope="row")
        return Value(lo=0.0, hi=1.0, role=d.MASK, grad=False, node=node, desc=f"`{name}` (by its name, a mask)",
                     vanish=false, points=((0.0, false),))
    if ADJACENCY_NAME.match(name):
        edgeless = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, an adjacency matrix) is all 0 for a graph without edges", node, "name", root=name)
        return Value(lo=0.0, role=d.DATA, node=node, desc=f"`{name}` (by its name, an adjacency matrix)", vanish=edgeless,
                     points=((0.0, Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, an adjacency matrix) is 0 between unlinked nodes", node, "name", root=name)),))
    if SIGNAL_NAME.search(name) and not NOT_SIGNAL.search(name):
        silent = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, raw data) is all 0 for a silent or blank input", node, "name", root=name)
        flat = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, raw data) is constant for a blank input", node, "name", root=name)
        zeros = Evidence(Tier.PLAUSIBLE, f"`{name}` (by its name, raw data) is exactly 0 in black or silent regions", node, "name", root=name)
        signed = SIGNED_SIGNAL.search(name) is not None
        below = Evidence(Tier.PLAUSIBLE if signed else Tier.DEGENERATE,
                         f"`{name}` (by its name, raw data) takes negative values" + ("" if signed else " once normalized"), node, "name")
        return Value(role=d.DATA, node=node, desc=f"`{name}` (by its name, raw data)", vanish=silent, constant=flat,
                     points=((0.0, zeros),), below=below)
    if BATCH_NAME.match(name):  # what the data loader yields: every entry read from it is data
        return Value(role=d.DATA, grad=False, node=node, desc=f"`{name}` (by its name, a batch of data)")
    if STEP_NAME.match(name):  # a step or epoch counter counts up from 0
        return Value(lo=0.0, integer=True, node=node, desc=f"`{name}` (by its name, a step counter)")
    if COORDINATE_NAME.search(name):  # coordinates of data: two of them coincide (a zero-width box, a repeated point)
        return Value(role=d.DATA, node=node, desc=f"`{name}` (by its name, coordinates of data)")
    return None


def data_argument(name: str, node) -> Value:
    """A parameter of a data transform (``Normalize.apply_transform(self, data)``): a raw sample."""
    silent = Evidence(Tier.PLAUSIBLE, f"`{name}`, the sample a data transform receives, is all 0 for a silent or blank input", node, "data", root=name)
    flat = Evidence(Tier.PLAUSIBLE, f"`{name}`, the sample a data transform receives, is constant for a blank input", node, "data", root=name)
    return Value(role=d.DATA, grad=False, node=node, desc=f"`{name}` (a data sample)", vanish=silent, constant=flat)


def opaque(v: Value) -> bool:
    """Nothing at all is known of ``v``."""
    return (v.role is None and not v.informative and v.const is None and v.module is None and v.items is None
            and v.element is None and v.entries is None and not v.points and v.vanish is None and v.constant is None
            and v.below is None and v.beyond is None and v.large is None and v.empty is None and v.single is None
            and not v.unit and not v.dist)


def named_call(name: str, node, text: str) -> Value | None:
    """What a call to a helper we cannot see into says by its name (``compute_amplitude(w)``)."""
    if AMPLITUDE_CALL.search(name):
        why = f"`{text}` (by its name, an amplitude) is 0 for a silent or all-zero input"
        return Value(lo=0.0, node=node, desc=f"an amplitude (`{text}`)").with_point(0.0, Evidence(Tier.PLAUSIBLE, why, node, "name"))
    return None
