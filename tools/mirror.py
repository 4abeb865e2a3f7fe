"""Offline helpers for CI and for anyone without network access.

    python tools/mirror.py serve ROOT [ROOT ...] [--port 0] [--url-file FILE]
        Serve the files under ROOT(s) on loopback HTTP (the first root holding
        a path wins). Point LLM_COURSE_MIRROR at the printed URL.

    python tools/mirror.py tiktoken-cache GPT2_DIR CACHE_DIR
        Put GPT-2's encoder.json and vocab.bpe from GPT2_DIR where tiktoken
        looks for them, so `tiktoken.get_encoding("gpt2")` works offline with
        TIKTOKEN_CACHE_DIR=CACHE_DIR.
"""

import argparse
import hashlib
import shutil
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TIKTOKEN_GPT2_URLS = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}


class MultiRootHandler(SimpleHTTPRequestHandler):
    """Serves a path from the first of several directories that has it."""

    def __init__(self, *args, roots, **kwargs):
        self.roots = roots
        super().__init__(*args, directory=str(roots[0]), **kwargs)

    def translate_path(self, path):
        candidates = []
        for root in self.roots:
            self.directory = str(root)
            candidates.append(super().translate_path(path))
        return next((c for c in candidates if Path(c).exists()), candidates[0])

    def log_message(self, format, *args):  # keep CI logs short
        pass


def serve(roots, port, url_file):
    roots = [Path(r).resolve() for r in roots]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        sys.exit(f"mirror: not a directory: {', '.join(missing)}")
    server = ThreadingHTTPServer(("127.0.0.1", port), partial(MultiRootHandler, roots=roots))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    if url_file:
        Path(url_file).write_text(url + "\n")
    print(f"Serving {', '.join(map(str, roots))} at {url}", flush=True)
    server.serve_forever()


def fill_tiktoken_cache(gpt2_dir, cache_dir):
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, url in TIKTOKEN_GPT2_URLS.items():
        source = Path(gpt2_dir) / name
        if not source.exists():
            sys.exit(f"tiktoken-cache: {source} is missing")
        # tiktoken caches each file under the SHA-1 of the URL it came from.
        shutil.copyfile(source, cache_dir / hashlib.sha1(url.encode()).hexdigest())
    print(f"tiktoken's gpt2 files are in {cache_dir}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve directories on loopback HTTP")
    serve_cmd.add_argument("roots", nargs="+")
    serve_cmd.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve_cmd.add_argument("--url-file", help="write the server's URL here once it listens")
    cache_cmd = commands.add_parser("tiktoken-cache", help="fill a TIKTOKEN_CACHE_DIR")
    cache_cmd.add_argument("gpt2_dir")
    cache_cmd.add_argument("cache_dir")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.roots, args.port, args.url_file)
    else:
        fill_tiktoken_cache(args.gpt2_dir, args.cache_dir)


if __name__ == "__main__":
    main()
