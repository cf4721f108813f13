"""OpenAI stand-in under ``/v1``: audio transcriptions, chat completions with structured outputs, and
the model list (``GET /v1/models``, what a connection test reads).

This stand-in does NO speech recognition. ``/v1/audio/transcriptions`` answers with the reference
transcript that travels with the sample audio: whoever registers a recording (the Twilio stand-in's
``POST /_sandbox/recordings``, or ``POST /_sandbox/transcripts`` here) registers its transcript under
the sha256 of the audio bytes, and the same bytes uploaded here get that text back. Unknown audio is
answered with ``{"text": ""}``, as a silent recording would be.

``/v1/chat/completions`` is no language model either: ``chat_model`` fills the requested JSON schema
from keyword rules over the transcript (summary and description marked ``[en] ...`` when the prompt
asks for another language than the caller's: it cannot translate). Only
``response_format.type == "json_schema"`` is served.

Behaviour knobs, ``PUT /_sandbox/behaviour`` (``GET`` reads them, ``DELETE`` restores defaults):

- ``unknown_audio_text``: the answer for audio with no registered transcript; "" by default, as
  for silence. Set it to a phantom phrase ("Thank you for watching.") to play what Whisper-style
  models do with silence; ``verbose_json`` then rates that segment as probably not speech
  (``no_speech_prob`` 0.92, ``avg_logprob`` -1.3), as Whisper does.
- ``chat_mode``: ``"keyword"`` (default) or ``"gullible"``, a model that obeys instructions in
  the transcript and breaks the schema doing so (``gullible_model``), for prompt-injection tests.

Faults (429 with Retry-After, 5xx, delays) come from the common ``/_sandbox/faults`` route.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import time
import wave
from typing import Any, Literal

import jsonschema
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, model_validator

from voiceticket_sandbox import chat_model, gullible_model, text_clues
from voiceticket_sandbox.contracts import OPENAI
from voiceticket_sandbox.control import control_router
from voiceticket_sandbox.recorder import SandboxMiddleware
from voiceticket_sandbox.state import SandboxState
from voiceticket_sandbox.strict_schema import strict_schema_problems

_ERROR_KINDS = {
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "unknown_url"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(status: int, messages: list[str], path: str = "", param: str | None = None) -> Any:
    """OpenAI's error body."""
    kind, code = _ERROR_KINDS.get(
        status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    return {"error": {"message": "; ".join(messages), "type": kind, "param": param, "code": code}}


def _error(status: int, message: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(openai_error(status, [message], param=param), status_code=status)


class TranscriptIn(BaseModel):
    """Body of ``POST /_sandbox/transcripts``: the audio (or its sha256) and what it says."""

    transcript: str
    audio_base64: str | None = None
    sha256: str | None = None

    @model_validator(mode="after")
    def _audio_or_digest(self) -> TranscriptIn:
        if self.audio_base64 is None and not self.sha256:
            raise ValueError("audio_base64 or sha256 is required")
        return self


class BehaviourIn(BaseModel):
    """Body of ``PUT /_sandbox/behaviour``: only the knobs given change."""

    unknown_audio_text: str | None = None
    chat_mode: Literal["keyword", "gullible"] | None = None


class ApiKeyIn(BaseModel):
    """Body of ``POST /_sandbox/api-keys``; once any key is registered, only those are accepted."""

    api_key: str


def create_openai_app(state: SandboxState | None = None) -> FastAPI:
    """The OpenAI stand-in as an ASGI app; control routes answer at ``/_sandbox`` and ``/v1/_sandbox``."""
    state = state or SandboxState()
    app = FastAPI(title="OpenAI sandbox", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json")
    app.state.sandbox = state
    app.add_middleware(
        SandboxMiddleware,
        state=state,
        service=OPENAI,
        spec_name=OPENAI,
        error_body=openai_error,
        control_prefixes=("/_sandbox/", "/v1/_sandbox/"),
    )
    for prefix in ("", "/v1"):
        app.include_router(control_router(state, OPENAI), prefix=prefix)
        app.include_router(_openai_control(state), prefix=prefix)
    app.include_router(_openai_api(state), prefix="/v1")
    return app


def _openai_control(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/_sandbox")

    @router.post("/transcripts", status_code=201)
    async def add_transcript(body: TranscriptIn) -> dict[str, str]:
        if body.audio_base64 is not None:
            digest = hashlib.sha256(base64.b64decode(body.audio_base64)).hexdigest()
        else:
            digest = (body.sha256 or "").lower()
        state.openai.transcripts[digest] = body.transcript
        return {"sha256": digest}

    @router.get("/behaviour")
    async def get_behaviour() -> dict[str, str]:
        return {"unknown_audio_text": state.openai.unknown_audio_text, "chat_mode": state.openai.chat_mode}

    @router.put("/behaviour")
    async def set_behaviour(body: BehaviourIn) -> dict[str, str]:
        if body.unknown_audio_text is not None:
            state.openai.unknown_audio_text = body.unknown_audio_text
        if body.chat_mode is not None:
            state.openai.chat_mode = body.chat_mode
        return await get_behaviour()

    @router.delete("/behaviour")
    async def reset_behaviour() -> dict[str, str]:
        state.openai.unknown_audio_text, state.openai.chat_mode = "", "keyword"
        return await get_behaviour()

    @router.post("/api-keys", status_code=201)
    async def add_api_key(body: ApiKeyIn) -> dict[str, str]:
        state.openai.api_keys.add(body.api_key)
        return {"status": "ok"}

    return router


def _authorized(state: SandboxState, request: Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return False
    return not state.openai.api_keys or key.strip() in state.openai.api_keys


MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1")
"""What ``GET /v1/models`` lists (a connection test's cheap authenticated read)."""


def _openai_api(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.get("/models")
    async def list_models(request: Request) -> Response:
        if not _authorized(state, request):
            return _error(401, "Incorrect API key provided.")
        data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"} for m in MODELS]
        return JSONResponse({"object": "list", "data": data})

    @router.post("/audio/transcriptions")
    async def transcribe(request: Request) -> Response:
        if not _authorized(state, request):
            return _error(401, "Incorrect API key provided.")
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "'file' is a required file part", param="file")
        audio = await upload.read()
        known = state.openai.transcripts.get(hashlib.sha256(audio).hexdigest())
        text = known if known is not None else state.openai.unknown_audio_text
        return _transcription_response(text, audio, form, phantom=known is None and bool(text))

    @router.post("/chat/completions")
    async def chat_completions(request: Request) -> Response:
        if not _authorized(state, request):
            return _error(401, "Incorrect API key provided.")
        payload = await request.json()
        response_format = payload.get("response_format") or {}
        if response_format.get("type") != "json_schema":
            return _error(
                400,
                "This sandbox only answers response_format {'type': 'json_schema', ...}.",
                param="response_format",
            )
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") or {}
        if spec.get("strict"):
            problems = strict_schema_problems(schema)
            if problems:
                message = f"Invalid schema for response_format '{spec.get('name')}': {problems[0]}"
                return _error(400, message, param="response_format")
        if state.openai.chat_mode == "gullible":
            gullible = gullible_model.answer(schema, payload.get("messages", []))
            return JSONResponse(_completion(payload, json.dumps(gullible, ensure_ascii=False)))
        transcript = chat_model.transcript_from_messages(payload.get("messages", []))
        try:
            messages = payload.get("messages", [])
            write_in = chat_model.requested_language(messages)
            content = json.dumps(chat_model.answer(schema, transcript, write_in), ensure_ascii=False)
        except jsonschema.ValidationError as exc:
            return _error(500, f"sandbox model could not satisfy the schema: {exc.message}")
        return JSONResponse(_completion(payload, content))

    return router


def _completion(payload: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_chars = sum(len(json.dumps(m.get("content", ""))) for m in payload.get("messages", []))
    prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(content) // 4)
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_sandbox",
    }


def _transcription_response(text: str, audio: bytes, form: Any, phantom: bool = False) -> Response:
    response_format = form.get("response_format") or "json"
    duration = _wav_duration(audio)
    if response_format == "text":
        return PlainTextResponse(text)
    if response_format in ("srt", "vtt"):
        end = _timestamp(duration, "," if response_format == "srt" else ".")
        start = _timestamp(0.0, "," if response_format == "srt" else ".")
        cue = f"{start} --> {end}\n{text}\n"
        body = f"1\n{cue}" if response_format == "srt" else f"WEBVTT\n\n{cue}"
        return PlainTextResponse(body)
    if response_format == "verbose_json":
        # OpenAI names the language in English words ("german"), not by its code.
        code = form.get("language") or text_clues.guess_language(text)
        language = _LANGUAGE_NAMES.get(code, code)
        # A phantom is what Whisper emits for silence: it rates such a segment as likely no speech.
        no_speech, logprob = (0.92, -1.3) if phantom else (0.01, -0.2)
        segment = {
            "id": 0, "seek": 0, "start": 0.0, "end": duration, "text": text, "tokens": [],
            "temperature": 0.0, "avg_logprob": logprob, "compression_ratio": 1.0,
            "no_speech_prob": no_speech,
        }  # fmt: skip
        return JSONResponse(
            {"task": "transcribe", "language": language, "duration": duration, "text": text,
             "segments": [segment] if text else []}
        )  # fmt: skip
    return JSONResponse({"text": text})


_LANGUAGE_NAMES = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "nl": "dutch", "pt": "portuguese", "pl": "polish", "sv": "swedish", "da": "danish",
}  # fmt: skip


def _wav_duration(audio: bytes) -> float:
    try:
        with wave.open(io.BytesIO(audio), "rb") as wav:
            return round(wav.getnframes() / float(wav.getframerate()), 3)
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"
