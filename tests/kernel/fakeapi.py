"""A minimal Kubernetes API server for kernel tests (no live API server is available here).

``python fakeapi.py --dir D --port-file F`` serves, on 127.0.0.1 inside whatever network
namespace it runs in:
- ``GET <path>``: the list in ``D/<name>.json`` (``name`` from PATHS), with its resourceVersion;
- ``GET <path>?watch=true&resourceVersion=N``: a chunked stream of the events in
  ``D/<name>.watch`` whose object is newer than N, including those the test appends while the
  agent watches;
- anything else: a 404 Status (e.g. policy.networking.k8s.io kinds not installed).
It writes the port it bound to ``F`` and runs until killed; every loop is bounded by sleeps.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATHS = {
    "/api/v1/namespaces": "namespaces",
    "/api/v1/nodes": "nodes",
    "/api/v1/pods": "pods",
    "/api/v1/services": "services",
    "/apis/networking.k8s.io/v1/networkpolicies": "networkpolicies",
}
NOT_FOUND = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "reason": "NotFound", "code": 404}).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    root = Path(args.dir)
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            name = PATHS.get(url.path)
            if name is None:
                return self.reply(404, NOT_FOUND)
            query = parse_qs(url.query)
            if query.get("watch") == ["true"]:
                since = int((query.get("resourceVersion") or ["0"])[0] or 0)
                return self.stream(root / f"{name}.watch", since)
            return self.reply(200, (root / f"{name}.json").read_bytes())

        def reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream(self, path: Path, since: int) -> None:
            """Events newer than the watch's resourceVersion, as the test appends them."""
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            offset = 0
            try:
                while not stop.is_set():
                    data = path.read_bytes()[offset:] if path.exists() else b""
                    lines = data.split(b"\n")[:-1]  # whole lines only
                    for line in lines:
                        offset += len(line) + 1
                        rv = json.loads(line)["object"]["metadata"]["resourceVersion"]
                        if int(rv) <= since:
                            continue
                        self.wfile.write(b"%x\r\n%s\n\r\n" % (len(line) + 1, line))
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                return  # the client went away

        def log_message(self, format: str, *args: Any) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    Handler.protocol_version = "HTTP/1.1"
    server = Server(("127.0.0.1", 0), Handler)
    Path(args.port_file).write_text(str(server.server_address[1]), encoding="utf-8")
    try:
        server.serve_forever()
    finally:
        stop.set()


if __name__ == "__main__":
    main()
