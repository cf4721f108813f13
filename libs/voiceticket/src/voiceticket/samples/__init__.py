"""Bundled sample calls: WAVs synthesised with espeak-ng and their reference transcripts."""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class SampleCall:
    name: str
    language: str
    caller: str
    description: str
    transcript: str
    path: Path

    @property
    def audio(self) -> bytes:
        return self.path.read_bytes()

    @property
    def duration_seconds(self) -> int:
        with wave.open(str(self.path), "rb") as wav:
            return max(1, round(wav.getnframes() / wav.getframerate()))


def sample_calls() -> dict[str, SampleCall]:
    entries = json.loads((HERE / "samples.json").read_text())
    return {
        e["name"]: SampleCall(
            name=e["name"],
            language=e["language"],
            caller=e["caller"],
            description=e["description"],
            transcript=e["transcript"],
            path=HERE / f"{e['name']}.wav",
        )
        for e in entries
    }
