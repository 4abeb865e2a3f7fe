"""One loopback HTTP server for the download tests, misbehaving on request."""

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer:
    """An HTTP server on 127.0.0.1 serving `files` ({url path: bytes}), with Range support.

    A value may instead be a function(handler) that answers however it likes. It records
    every request as (path, Range header or None). Misbehaviour per path: `status`
    {path: code} answers with that HTTP error; `drop_first` sends half of the body of the
    first response and closes the connection; `ignore_range` always sends the whole file
    with 200, as servers without Range support do.
    """

    def __init__(self, files, status=None, drop_first=(), ignore_range=()):
        self.files = files
        self.status = status or {}
        self.drop_first = set(drop_first)
        self.ignore_range = set(ignore_range)
        self.requests = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        # A short poll interval: shutdown() waits for the next poll.
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()

    def ranges_asked(self, path):
        return [range_header for asked, range_header in self.requests if asked == path]

    def _handler_class(server):  # noqa: N805 -- `server` is the LoopbackServer
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one response per connection; a body may just end

            def do_GET(self):
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                body = server.files.get(self.path)
                if self.path in server.status or body is None:
                    self.send_error(server.status.get(self.path, 404))
                elif callable(body):
                    try:
                        body(self)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                else:
                    self._send(body, range_header)

            def _send(self, body, range_header):
                start = 0
                if range_header and self.path not in server.ignore_range:
                    start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if self.path in server.drop_first:
                    server.drop_first.discard(self.path)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.close_connection = True  # hang up mid-body
                    return
                self.wfile.write(body[start:])

            def log_message(self, format, *args):
                pass

        return Handler
