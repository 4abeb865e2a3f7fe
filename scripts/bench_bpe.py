"""Our byte-pair encoder against tiktoken's, on the same text, in one run.

    python scripts/bench_bpe.py                          # the story, fastest of 5 runs each
    python scripts/bench_bpe.py --text notes.txt --runs 3

Appendix F's BPETokenizerSimple is loaded with GPT-2's encoder.json and vocab.bpe and first
checked to give tiktoken's IDs on the text. Then it prints the tokens per second of three
encoders, each the fastest of --runs runs: ours with a cold cache (every word merged afresh,
as on a first pass over new text), ours with a warm cache (every word seen before), and
tiktoken's (Rust), with how many times tiktoken's time each one takes.
"""

import argparse
import sys
import time
from pathlib import Path

from gpt_download import download_data_file, download_gpt2_tokenizer_files
from previous_chapters import BPETokenizerSimple, gpt2_tokenizer


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"bench_bpe.py: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def fastest_run(encode, text, runs, before=lambda: None):
    """The shortest of `runs` timed calls of encode(text), each after before()."""
    times = []
    for _ in range(runs):
        before()
        start = time.perf_counter()
        encode(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", help="a UTF-8 text file (default: the course's story)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per encoder (default 5)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, not {args.runs}")
    path = Path(args.text) if args.text else download_data_file("the-verdict.txt")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        parser.error(f"cannot read --text {path}: {error}")

    ours = BPETokenizerSimple().load_vocab_and_merges_from_openai(*download_gpt2_tokenizer_files())
    theirs = gpt2_tokenizer()
    ids = ours.encode(text, allowed_special="all")
    if ids != theirs.encode(text, allowed_special="all"):
        raise SystemExit("bench_bpe: our IDs differ from tiktoken's on this text (a bug: report it)")

    def encode(tokenizer):
        return lambda t: tokenizer.encode(t, allowed_special="all")

    timings = [("ours, cold cache", fastest_run(encode(ours), text, args.runs,
                                                before=ours.chunk_cache.clear)),
               ("ours, warm cache", fastest_run(encode(ours), text, args.runs)),
               ("tiktoken", fastest_run(encode(theirs), text, args.runs))]
    rust = timings[-1][1]
    print(f"{path.name}: {len(text):,} characters, {len(ids):,} tokens, the same IDs from both")
    for name, seconds in timings:
        print(f"{name:17} {seconds * 1000:9.2f} ms {len(ids) / seconds:14,.0f} tokens/s "
              f"{seconds / rust:8.1f}x tiktoken's time")


if __name__ == "__main__":
    main()
