"""The webhook baseline: a bare FastAPI app on uvicorn in its own process, one POST route that
reads the form and answers a small TwiML, as ingress's incoming-call webhook does minus our work.

    python bench/bare_endpoint.py --port 8099 --ready-file /tmp/bare.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Thank you for calling.</Say></Response>'


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        form = await request.form()
        if not form.get("CallSid"):
            return Response(status_code=400)
        return Response(TWIML, media_type="application/xml")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    args.ready_file.write_text(json.dumps({"url": f"http://127.0.0.1:{args.port}"}))
    server.run()


if __name__ == "__main__":
    main()
