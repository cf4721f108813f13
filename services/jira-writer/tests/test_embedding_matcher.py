"""The embedding repeat matcher: all-MiniLM-L6-v2 run with numpy, and the line's choice of matcher."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from jira_writer_testkit import FakeServiceDesk, analyzed, deps, handle
from pydantic import SecretStr
from tokenizers import Tokenizer

from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.events import TicketCreated
from voiceticket_common.runtime_views import DEFAULT_REPEAT_MATCHER, JiraWriterLine
from voiceticket_common.sealing import MemoryCallKeys
from voiceticket_jira_writer import minilm
from voiceticket_jira_writer.embedding_matcher import DEFAULT_EMBEDDING_THRESHOLD, EmbeddingMatcher
from voiceticket_jira_writer.ports import RequestStatus
from voiceticket_jira_writer.repeat_callers import CALLER_HASH_PURPOSE, RepeatCallers, default_matchers
from voiceticket_jira_writer.repeat_matcher import Candidate, LexicalMatcher, Match

SECOND_CALL = "CA" + "5" * 32


@pytest.fixture(scope="module")
def model() -> minilm.MiniLm:
    return minilm.MiniLm.load()


# --- the encoder ---------------------------------------------------------------------------------


def test_importing_jira_writer_loads_no_model() -> None:
    code = (
        "import sys\n"
        "import voiceticket_jira_writer.bootstrap, voiceticket_jira_writer.embedding_matcher\n"
        "from voiceticket_jira_writer import minilm\n"
        "assert not minilm.loaded(), 'loaded at import'\n"
        "assert 'tokenizers' not in sys.modules, 'the tokenizer is loaded with the model, not before'\n"
        "minilm.shared_model()\n"
        "assert minilm.loaded() and minilm.shared_model() is minilm.shared_model()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_published_similarities_are_reproduced(model: minilm.MiniLm) -> None:
    # sentence-transformers' usage example for all-MiniLM-L6-v2 prints these similarities
    e = model.embed(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    assert e.shape == (3, minilm.DIMENSION) and e.dtype == np.float32
    sims = e @ e.T
    assert sims[0, 1] == pytest.approx(0.6660, abs=5e-4)
    assert sims[0, 2] == pytest.approx(0.1046, abs=5e-4)
    assert sims[1, 2] == pytest.approx(0.1411, abs=5e-4)


def test_embeddings_have_norm_one_and_paraphrases_score_above_unrelated(model: minilm.MiniLm) -> None:
    e = model.embed(
        ["I cannot log in to the portal", "The website rejects my password", "The printer is out of toner"]
    )
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2


def test_the_token_ids_are_the_tokenizers_own(model: minilm.MiniLm) -> None:
    reference = Tokenizer.from_file(str(minilm.model_dir() / "tokenizer.json"))
    text = "Invoice INV-2291 charged twice, Müller's café can't pay!"
    encoding = reference.encode(text)
    own = [i for i, m in zip(encoding.ids, encoding.attention_mask, strict=True) if m]
    assert model.token_ids(text) == own and own[0] == 101 and own[-1] == 102
    long = model.token_ids("word " * 1000)
    assert len(long) == minilm.MAX_SEQ_LENGTH and long[-1] == 102, "cut to 256 with [SEP] kept"


def test_padding_does_not_change_an_embedding_and_runs_are_deterministic(model: minilm.MiniLm) -> None:
    short, longer = (
        model.token_ids("VPN down"),
        model.token_ids("The VPN disconnects every few minutes today"),
    )
    alone = model.embed_ids([short])[0]
    padded = model.embed_ids([short, longer])[0]  # short is padded to longer's length
    assert len(short) < len(longer)
    assert np.allclose(alone, padded, atol=1e-5)
    assert np.array_equal(model.embed(["VPN down"]), model.embed(["VPN down"]))


def test_the_encoder_on_small_weights_keeps_shapes_and_masks(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    hidden, inner, vocab, layers = 8, 16, 20, 2
    shapes = {
        "embeddings.word_embeddings.weight": (vocab, hidden),
        "embeddings.position_embeddings.weight": (10, hidden),
        "embeddings.token_type_embeddings.weight": (2, hidden),
        "embeddings.LayerNorm.weight": (hidden,),
        "embeddings.LayerNorm.bias": (hidden,),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for name in ("query", "key", "value"):
            shapes[f"{p}.attention.self.{name}.weight"] = (hidden, hidden)
            shapes[f"{p}.attention.self.{name}.bias"] = (hidden,)
        shapes |= {
            f"{p}.attention.output.dense.weight": (hidden, hidden),
            f"{p}.attention.output.dense.bias": (hidden,),
            f"{p}.attention.output.LayerNorm.weight": (hidden,),
            f"{p}.attention.output.LayerNorm.bias": (hidden,),
            f"{p}.intermediate.dense.weight": (inner, hidden),
            f"{p}.intermediate.dense.bias": (inner,),
            f"{p}.output.dense.weight": (hidden, inner),
            f"{p}.output.dense.bias": (hidden,),
            f"{p}.output.LayerNorm.weight": (hidden,),
            f"{p}.output.LayerNorm.bias": (hidden,),
        }
    weights = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
    path = tmp_path / "tiny.safetensors"
    _write_safetensors(path, weights)
    read = minilm.read_safetensors(path)
    assert all(np.array_equal(read[n], w) for n, w in weights.items()), "the format round-trips"
    encoder = minilm.BertEncoder(read, minilm.BertConfig(layers=layers, hidden=hidden, heads=2))
    ids = np.array([[1, 5, 7, 2, 0, 0], [1, 9, 2, 0, 0, 0]], np.int64)
    mask = (ids != 0).astype(np.int64)
    assert encoder.hidden_states(ids, mask).shape == (2, 6, hidden)
    pooled = encoder.pooled(ids, mask)
    assert pooled.shape == (2, hidden) and np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    garbage = ids.copy()
    garbage[0, 4:] = 13  # other ids under the padding: masked out, nothing changes
    assert np.allclose(encoder.pooled(garbage, mask)[0], pooled[0], atol=1e-5)
    assert np.allclose(encoder.pooled(ids[:1, :4], mask[:1, :4])[0], pooled[0], atol=1e-5)


def test_a_safetensors_file_whose_sizes_do_not_match_is_refused(tmp_path: Path) -> None:
    header = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(ValueError, match="does not match its shape"):
        minilm.read_safetensors(path)


def test_erf_is_within_float32_of_the_exact_one() -> None:
    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    exact = np.array([math.erf(float(v)) for v in x])
    assert np.max(np.abs(minilm.erf(x) - exact)) < 5e-7, "1.5e-7 and float32 rounding"
    assert minilm.gelu(np.array([0.0, 1.0], np.float32))[1] == pytest.approx(0.8413447, abs=1e-6)


def _write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {}
    offset, blobs = 0, []
    for name, array in tensors.items():
        blob = array.astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


# --- the matcher ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "new_call", "same"),
    [
        # a paraphrase the lexical matcher misses (one shared word of four)
        (
            "Outlook keeps asking for password",
            "My email program prompts for my password again and again",
            True,
        ),
        ("VPN disconnects every few minutes on company laptop", "VPN still dropping connection", True),
        ("VPN disconnects every few minutes on company laptop", "Printer on third floor out of toner", False),
        ("Invoice INV-2291 charged twice", "New user account for a colleague", False),
    ],
)
def test_pairs_score_on_the_right_side_of_the_threshold(
    model: minilm.MiniLm, earlier: str, new_call: str, same: bool
) -> None:
    matcher = EmbeddingMatcher(model=lambda: model)
    [score] = matcher.scores(new_call, [earlier])
    assert (score >= DEFAULT_EMBEDDING_THRESHOLD) is same, score


async def test_the_best_candidate_over_the_threshold_wins_off_the_event_loop(model: minilm.MiniLm) -> None:
    threads: list[threading.Thread] = []

    def counted() -> minilm.MiniLm:
        threads.append(threading.current_thread())
        return model

    matcher = EmbeddingMatcher(model=counted)
    candidates = [
        Candidate("HELP-2", "Printer on third floor out of toner"),
        Candidate("HELP-1", "Outlook keeps asking for password"),
    ]
    match = await matcher.match("My email program prompts for my password again and again", candidates)
    assert match.issue_key == "HELP-1" and match.score >= DEFAULT_EMBEDDING_THRESHOLD
    assert threads and threads[0] is not threading.main_thread(), "the model runs in a thread"
    lexical = await LexicalMatcher().match(
        "My email program prompts for my password again and again", candidates
    )
    assert lexical.issue_key is None, "the paraphrase the lexical matcher misses"
    unrelated = await matcher.match("The coffee machine leaks water", candidates)
    assert unrelated.issue_key is None and unrelated.score < DEFAULT_EMBEDDING_THRESHOLD


async def test_no_candidates_loads_no_model() -> None:
    def refuse() -> minilm.MiniLm:
        raise AssertionError("the model was loaded for nothing")

    assert await EmbeddingMatcher(model=refuse).match("anything", []) == Match(None, 0.0)


# --- the line's choice -------------------------------------------------------------------------------


class _Recording:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.calls: list[list[str]] = []

    async def match(self, new_call: str, candidates: list[Candidate]) -> Match:
        self.calls.append([c.issue_key for c in candidates])
        return Match(self.answer, 1.0 if self.answer else 0.0)


def _line(**changes: object) -> JiraWriterLine:
    return JiraWriterLine(number="+15550100", service_desk_id="1", request_type_id="2", **changes)  # type: ignore[arg-type]


def test_each_line_gets_its_matcher_and_an_unknown_name_the_lexical_one() -> None:
    repeat = RepeatCallers(None, CallerHasher(SecretStr("k"), CALLER_HASH_PURPOSE), MemoryCallKeys())  # type: ignore[arg-type]
    assert DEFAULT_REPEAT_MATCHER == "embedding"
    assert isinstance(repeat.matcher(_line()), EmbeddingMatcher)
    assert isinstance(repeat.matcher(_line(repeat_matcher="lexical")), LexicalMatcher)
    assert isinstance(repeat.matcher(_line(repeat_matcher="oracle")), LexicalMatcher)


class _StatusDesk(FakeServiceDesk):
    async def request_status(self, site, key):  # type: ignore[no-untyped-def]
        index = int(key.split("-")[1])
        return RequestStatus(str(10000 + index), key, self.requests[index - 1].fields["summary"], False)


@pytest.mark.parametrize(
    ("setting", "chosen", "unused"),
    [("embedding", "embedding", "lexical"), ("lexical", "lexical", "embedding")],
)
async def test_the_decision_asks_the_lines_matcher(ledger, setting: str, chosen: str, unused: str) -> None:  # type: ignore[no-untyped-def]
    desk = _StatusDesk()
    matchers = {"embedding": _Recording("HELP-1"), "lexical": _Recording("HELP-1")}
    built = deps(desk, ledger, repeat_callers="comment", repeat_window_hours=72, repeat_matcher=setting)
    built.repeat = RepeatCallers(
        ledger, CallerHasher(SecretStr("k"), CALLER_HASH_PURPOSE), MemoryCallKeys(), matchers
    )
    [first] = await handle(analyzed(), built)
    assert isinstance(first, TicketCreated) and not first.added_to_existing
    [again] = await handle(analyzed().model_copy(update={"call_sid": SECOND_CALL}), built)
    assert isinstance(again, TicketCreated) and again.added_to_existing and again.issue_key == "HELP-1"
    assert matchers[chosen].calls[-1] == ["HELP-1"] and matchers[unused].calls == []


def test_default_matchers_take_the_configured_thresholds() -> None:
    built = default_matchers(LexicalMatcher(0.7), EmbeddingMatcher(0.8))
    assert built["lexical"] == LexicalMatcher(0.7)
    assert isinstance(built["embedding"], EmbeddingMatcher) and built["embedding"].threshold == 0.8


def test_the_bench_figures_for_the_embedding_matcher() -> None:
    # The figures docs/architecture.md and bench/results/ give for the default matcher.
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "bench" / "repeat_matcher.py"
    spec = importlib.util.spec_from_file_location("repeat_matcher_bench_embedding", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    pairs = bench.scored(bench.load(), bench.embedding_score)
    assert bench.choose_threshold(pairs) == DEFAULT_EMBEDDING_THRESHOLD, "the rule the default came from"
    cv, _ = bench.cross_validate(bench.stratified_folds(pairs, bench.FOLDS, bench.SEED))
    assert (cv.tp, cv.fp, cv.fn, cv.tn) == (22, 1, 5, 22), cv
    fresh = bench.evaluate(bench.load(bench.FRESH), DEFAULT_EMBEDDING_THRESHOLD, bench.embedding_score)
    assert (fresh.tp, fresh.fp, fresh.fn, fresh.tn) == (4, 2, 4, 4), fresh
    lexical = bench.evaluate(bench.load(bench.FRESH), bench.DEFAULT_THRESHOLD)
    assert fresh.precision > lexical.precision and fresh.recall > lexical.recall, "why it is the default"
