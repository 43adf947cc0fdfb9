"""A local stand-in for the Gemini API's streaming endpoint (`...:streamGenerateContent?alt=sse`).

The model name in the request picks the behaviour, so one server covers every scenario of a test module.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _event(text: str, finish: str | None = None) -> bytes:
    cand = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        cand["finishReason"] = finish
    return b"data: " + json.dumps({"candidates": [cand], "modelVersion": "fake"}).encode() + b"\r\n\r\n"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        model = self.path.split("/models/")[-1].split(":")[0]
        if model == "error-500":
            return self._json(500, {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}})
        if model == "error-429":
            return self._json(429, {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
        if model == "error-403":
            return self._json(403, {"error": {"code": 403, "message": "bad key", "status": "PERMISSION_DENIED"}})
        if model == "slow":
            time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if model == "midstream":
            self.send_header("Content-Length", "100000")  # promise more than we send, then hang up
            self.end_headers()
            self.wfile.write(_event("Pneumothorax is air in the pleural space [1]. "))
            self.wfile.flush()
            self.close_connection = True
            return
        texts = self.server.scripts.get(model, ["A pneumothorax shows a thin ", "pleural line with no lung ",
                                                "markings beyond it [1]."])
        payload = b"".join(_event(t, "STOP" if i == len(texts) - 1 else None) for i, t in enumerate(texts))
        if model == "empty":
            payload = b"data: " + json.dumps({"candidates": [{"content": {"role": "model", "parts": []},
                                                              "finishReason": "SAFETY"}]}).encode() + b"\r\n\r\n"
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeGemini:
    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.requests = []
        self.server.scripts = {}
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def requests(self) -> list:
        return self.server.requests

    def script(self, model: str, texts: list[str]) -> None:
        self.server.scripts[model] = texts

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
