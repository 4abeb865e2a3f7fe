"""Classify text messages as spam or not spam with a classifier fine-tuned in Chapter 6.

Examples (run from the repository root):

    python scripts/classify.py "WINNER!! Claim your prize now"
    python scripts/classify.py < messages.txt
    python scripts/classify.py --ckpt my_classifier.pth        # type messages; `exit` quits

Messages come from the arguments; without arguments, one per line from standard input
when it is piped in, else from an interactive prompt (`exit` or Ctrl-D quits). For each
message one line is printed:

    <label><TAB><spam probability><TAB><message>

where the label is "spam" or "not spam" and the probability is the softmax over the
classifier's two scores (class 1 = spam). A message longer than the classifier's input
length is cut to its first tokens, with a note on standard error.

--ckpt (default: models/spam_classifier.pth, which ch06_classification.ipynb section 6.10
saves) reads the course's checkpoint format as Chapter 6 saves it: a dict
{"config", "model_state_dict"} written by save_gpt_checkpoint, whose "config" is a GPTModel
configuration plus "num_classes" (the size of the classification head) and "max_length"
(the token length the training messages were padded to; new messages are prepared the
same way). A language-model checkpoint from Chapter 5 is refused.

Exit status: 2 for a usage error (an empty message, a missing or unsuitable checkpoint,
standard input closed), else 0. With standard input, a rejected line (empty, or not
UTF-8 text) is reported and the others are still classified; the exit status is then 2.
At the interactive prompt it is always 0. Ctrl-C ends with 130, and output into a pipe
that was closed (`| head -1`) ends quietly with 141; every error is one line.
"""

import argparse
import sys
from pathlib import Path

# Make the course modules (and the sibling generate.py) importable from anywhere.

from scripts.generate import ArgumentParser, UsageError, load_tokenizer, pick_device, run_cli

EXIT_PROMPT = "exit"
DEFAULT_CKPT = Path("models") / "spam_classifier.pth"
MADE_BY = "ch06_classification.ipynb section 6.10 saves models/spam_classifier.pth"

def parse_args(argv=None):
    parser = ArgumentParser(
        prog="classify.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("messages", nargs="*", metavar="MESSAGE",
                        help="messages to classify (default: read standard input)")
    parser.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT,
                        help=f"the fine-tuned classifier (default: {DEFAULT_CKPT})")
    parser.add_argument("--device", default="auto",
                        help="auto (default: $LLM_COURSE_DEVICE if set, else cuda, then mps, then cpu), "
                             "or a torch device name")
    return parser.parse_args(argv)


class Classifier:
    """The loaded model with what it needs to classify one message."""

    def __init__(self, ckpt, device):
        from previous_chapters import load_classifier_checkpoint

        try:
            self.model, checkpoint = load_classifier_checkpoint(ckpt, device=device)
        except (FileNotFoundError, ValueError) as error:
            raise UsageError(" ".join(str(error).split())) from None
        config = checkpoint["config"]
        self.device = device
        self.max_length = config.get("max_length")
        # The number of tokens the model reads, as spam_probability computes it.
        context_length = config["context_length"]
        self.limit = context_length if self.max_length is None else min(self.max_length, context_length)
        self.tokenizer = load_tokenizer()

    def __call__(self, text, where):
        """The output line for one message; UsageError if it can't be classified."""
        from previous_chapters import classify_review, spam_probability

        if not text.strip():
            raise UsageError(f"{where} is empty: give some text to classify")
        try:
            num_tokens = len(self.tokenizer.encode(text))
            probability = spam_probability(text, self.model, self.tokenizer, self.device,
                                           max_length=self.max_length)
            label = classify_review(text, self.model, self.tokenizer, self.device,
                                    max_length=self.max_length)
        except ValueError as error:  # e.g. text holding the special token <|endoftext|>
            raise UsageError(f"{where}: {' '.join(str(error).split())}") from None
        if num_tokens > self.limit:
            print(f"note: {where} has {num_tokens} tokens; the classifier reads only the "
                  f"first {self.limit}", file=sys.stderr)
        return f"{label}\t{probability:.3f}\t{text}"


def classify_stream(classify, lines, interactive):
    """Classify one message per line, reporting bad ones and going on; returns the exit code.

    `lines` may hold bytes (standard input read raw): each line is decoded on its own, so
    one line that is not UTF-8 is reported like any other bad line."""
    exit_code = 0
    for number, line in enumerate(lines, start=1):
        where = "the message" if interactive else f"line {number}"
        try:
            if isinstance(line, bytes):
                try:
                    line = line.decode("utf-8")
                except UnicodeDecodeError:
                    raise UsageError(f"{where} is not UTF-8 text") from None
            text = line.rstrip("\r\n")
            if interactive and text.strip() == EXIT_PROMPT:
                break
            print(classify(text, where), flush=True)
        except UsageError as error:
            print(f"classify.py: error: {error}", file=sys.stderr, flush=True)
            if not interactive:  # someone at the prompt has seen the error already
                exit_code = error.exit_code
    return exit_code


def prompt_lines():
    """Lines typed at an interactive prompt, until end of input (Ctrl-D)."""
    while True:
        try:
            yield input("message> ")
        except EOFError:
            print(file=sys.stderr)
            return
        except UnicodeDecodeError:
            print("classify.py: error: that message is not UTF-8 text", file=sys.stderr)


def main(argv=None):
    return run_cli("classify.py", _main, argv)


def _main(argv=None):
    args = parse_args(argv)
    # Check what can be checked before the (slow) model loading.
    for number, text in enumerate(args.messages, start=1):
        if not text.strip():
            raise UsageError(f"message {number} is empty: give some text to classify")
    if not args.messages and sys.stdin is None:
        raise UsageError("no messages: standard input is closed; give messages as arguments")
    if not args.ckpt.is_file():
        raise UsageError(f"checkpoint file not found: {args.ckpt} ({MADE_BY}; or give --ckpt)")
    classify = Classifier(args.ckpt, pick_device(args.device))

    if args.messages:
        for number, text in enumerate(args.messages, start=1):
            print(classify(text, f"message {number}"), flush=True)
        return 0
    if sys.stdin.isatty():
        print(f"Type a message and press Enter; `{EXIT_PROMPT}` or Ctrl-D quits.",
              file=sys.stderr)
        return classify_stream(classify, prompt_lines(), interactive=True)
    # Raw bytes: a line that is not UTF-8 is reported, not fatal to the others.
    stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    return classify_stream(classify, stream, interactive=False)


if __name__ == "__main__":
    sys.exit(main())
