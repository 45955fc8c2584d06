"""A fake OpenAI-compatible model server on loopback, so real gateways can run agents offline.

Models behave by their id: `fast` answers at once, `slow` streams for a few seconds, and
`broken` fails every request with HTTP 401. Every stream ends with the `usage` chunk the
gateway needs to record tokens and cost.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS = ("fast", "slow", "broken")
REPLY = "All systems nominal. The fleet is healthy and every agent reports in."


class _Handler(BaseHTTPRequestHandler):
    server: FakeModelServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(
                200, {"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]}
            )
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        model = str(body.get("model", "fast")).split("/")[-1]
        self.server.requests.append((self.path, model))
        if model == "broken":
            self._json(
                401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}}
            )
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"unsupported path {self.path}"}})
            return
        self._stream(model, body)

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, model: str, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        created = int(time.time())
        words = REPLY.split(" ")
        pause = self.server.slow_pause if model == "slow" else 0.0
        base = {
            "id": f"chatcmpl-{created}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }

        def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {**base, "choices": choices, **extra}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for n, word in enumerate(words):
            time.sleep(pause)
            text = word if n == 0 else f" {word}"
            send([{"index": 0, "delta": {"content": text}, "finish_reason": None}])
        send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        prompt_tokens = 40 + len(json.dumps(body.get("messages", []))) // 4
        completion_tokens = len(words) * 2
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        send([], usage=usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class FakeModelServer(ThreadingHTTPServer):
    """Serve the fake models on 127.0.0.1 from a daemon thread; use it as a context manager."""

    daemon_threads = True

    def __init__(self, slow_pause: float = 0.25) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.slow_pause = slow_pause
        self.requests: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def provider_config(base_url: str) -> dict[str, Any]:
    """The `models.providers.fake` entry pointing a gateway at this server."""
    return {
        "baseUrl": base_url,
        "apiKey": "fake-model-key",
        "api": "openai-completions",
        "models": [
            {
                "id": model,
                "name": f"Fake {model}",
                "reasoning": False,
                "input": ["text"],
                "cost": {"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75},
                "contextWindow": 128000,
                "maxTokens": 4096,
            }
            for model in MODELS
        ],
    }
