"""Regenerate the sample calls' audio with espeak-ng (Debian package `espeak-ng`) and sox.

The WAVs are committed; this script documents how they were made and rebuilds them:
``python -m voiceticket.samples.generate``. 8 kHz mono 16-bit, like a phone line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        raise SystemExit("needs espeak-ng and sox (apt-get install espeak-ng sox)")
    for sample in json.loads((HERE / "samples.json").read_text()):
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "speech.wav"
            subprocess.run(
                ["espeak-ng", "-v", sample["voice"], "-s", "150", "-w", str(raw), sample["transcript"]],
                check=True,
            )
            target = HERE / f"{sample['name']}.wav"
            subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(target)], check=True)
            print(f"{target.name}: {target.stat().st_size} bytes")


if __name__ == "__main__":
    main()
