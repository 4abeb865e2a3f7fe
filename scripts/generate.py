"""Generate text with GPT-2: OpenAI's weights, or a checkpoint you trained in the course.

Examples (run from the repository root):

    python scripts/generate.py --prompt "Every new day brings"
    python scripts/generate.py --size medium --prompt "The lighthouse keeper" \\
        --temperature 1.0 --top_k 50 --seed 7
    python scripts/generate.py --ckpt models/ch05_model_and_optimizer.pth --prompt "I had always thought"

Without --ckpt, OpenAI's GPT-2 weights for --size are downloaded into --models-dir
(about 500 MB for small, 6 GB for xl) unless they are already there; set
LLM_COURSE_MIRROR to download from a mirror instead.

--ckpt reads the course's checkpoint format, a dict {"config", "model_state_dict",
["optimizer_state_dict"]} as written by save_gpt_checkpoint (Chapter 5). A bare
state_dict (torch.save(model.state_dict(), path)) is read as a GPT-2 model of --size.

The default temperature 0 is greedy decoding (the same text every time); a temperature
above 0 samples, optionally restricted by --top_k and/or --top_p, and --seed makes the
sample repeatable. Generation stops early at GPT-2's <|endoftext|> token. The text is
printed as it is generated, with the KV cache of Chapter 5 (generate_stream).
"""

import argparse
import codecs
import math
import os
import sys
from pathlib import Path

# Make the course modules importable when the script is run from anywhere.

SIZES = ("small", "medium", "large", "xl")  # --size: "gpt2-<size> (...)" in MODEL_CONFIGS


def gpt2_model_name(size):
    """The MODEL_CONFIGS name of a --size: "medium" -> "gpt2-medium (355M)"."""
    from previous_chapters import MODEL_CONFIGS

    return next(name for name in MODEL_CONFIGS if name.startswith(f"gpt2-{size} "))


class CliError(Exception):
    """A problem the command reports in one line, without a traceback: exit code 1."""

    exit_code = 1


class UsageError(CliError):
    """A problem with the user's input: reported in one line, exit code 2."""

    exit_code = 2


class DownloadFailed(CliError):
    """The weights could not be downloaded: reported without a traceback, exit code 1."""

    exit_code = 1


# Below this, sampling is greedy decoding in all but name, and far below it the division
# by the temperature overflows to inf/nan.
MIN_TEMPERATURE = 1e-4


def run_cli(prog, main, argv=None):
    """Run `main(argv)` as a command and return its exit code, never with a traceback.

    UsageError ends in one line and exit code 2, any other CliError (DownloadFailed...)
    and an unwritable output or unreadable file (OSError) in one line and 1, Ctrl-C in 130; when the reader of
    the output goes away (`| head -1`) it stops quietly with 141, as `yes | head` does.
    """
    try:
        code = main(argv)
        sys.stdout.flush()  # a full disk or closed pipe shows here, not at exit
        return code
    except CliError as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except OSError as error:
        _drop_stdout()
        where = f": {error.filename}" if error.filename else " (standard output?)"
        print(f"{prog}: error: {error.strerror or error}{where}", file=sys.stderr)
        return 1


def _drop_stdout():
    """Point standard output at /dev/null, so that Python's final flush can't fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, but a bad argument is one line (not the whole usage), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None):
    parser = ArgumentParser(
        prog="generate.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prompt", required=True, help="the text to continue")
    parser.add_argument("--size", choices=SIZES, default="small",
                        help="GPT-2 size to download (default: small = 124M); with --ckpt, "
                             "only used for a bare state_dict")
    parser.add_argument("--ckpt", type=Path,
                        help="a checkpoint file to use instead of OpenAI's weights")
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="where OpenAI's weights are stored (default: models)")
    add_source_arg(parser)
    add_decoding_args(parser, default_tokens=50)
    return parser.parse_args(argv)


def add_source_arg(parser):
    """--source: where download_and_load_gpt2 gets GPT-2's weights."""
    from gpt_download import GPT2_SOURCES

    parser.add_argument("--source", choices=GPT2_SOURCES, default="openai",
                        help="openai: OpenAI's original TensorFlow files (default); huggingface: "
                             "the same weights as the Hugging Face hub's model.safetensors")


def add_decoding_args(parser, default_tokens):
    """The decoding and device options shared by generate.py and chat.py."""
    parser.add_argument("--tokens", type=int, default=default_tokens,
                        help=f"maximum number of new tokens (default: {default_tokens})")
    parser.add_argument("--temperature", type=float, default=0.0,
                        help="0 = greedy (default); > 0 samples, higher = more random")
    parser.add_argument("--top_k", type=int, default=None,
                        help="sample only among the k most likely tokens")
    parser.add_argument("--top_p", type=float, default=None,
                        help="sample only among the most likely tokens whose probabilities "
                             "add up to p (0 < p <= 1)")
    parser.add_argument("--seed", type=int, default=123, help="random seed (default: 123)")
    parser.add_argument("--device", default="auto",
                        help="auto (default: $LLM_COURSE_DEVICE if set, else cuda, then mps, then cpu), "
                             "or a torch device name")


def check_args(args):
    if not args.prompt.strip():
        raise UsageError("--prompt is empty: give some text to continue")
    if args.tokens < 0:
        raise UsageError(f"--tokens must be >= 0, got {args.tokens}")
    check_decoding_args(args)
    if args.ckpt is not None and not args.ckpt.is_file():
        raise UsageError(f"checkpoint file not found: {args.ckpt} (Chapter 5 saves its model in "
                         "ch05_pretraining.ipynb section 5.7, scripts/pretrain.py writes "
                         "models/pretrain.pth)")


def check_decoding_args(args):
    """Reject sampling settings that generate() would refuse, as a one-line usage error."""
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise UsageError(f"--temperature must be a number >= 0 (0 means greedy), "
                         f"got {args.temperature}")
    if 0 < args.temperature < MIN_TEMPERATURE:
        raise UsageError(f"--temperature {args.temperature} is too small to sample with; "
                         f"use 0 for greedy decoding or at least {MIN_TEMPERATURE}")
    if args.top_k is not None and args.top_k < 1:
        raise UsageError(f"--top_k must be at least 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise UsageError(f"--top_p must be in (0, 1], got {args.top_p}")
    if not 0 <= args.seed < 2**63:
        raise UsageError(f"--seed must be from 0 to 2**63 - 1, got {args.seed}")


def check_writable(path):
    """UsageError unless a file can be written at `path` (its folder is made if needed)."""
    if path.is_dir():
        raise UsageError(f"--out {path} is a folder; give a file name")
    folder = next((p for p in path.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise UsageError(f"cannot write --out {path}: {folder} is not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.{os.getpid()}.probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise UsageError(f"cannot write --out {path}: {error.strerror or error}") from None


def pick_device(name):
    """--device as a torch device: "auto" (or None) lets Chapter 5's choose_device pick. A
    device this machine lacks is a usage error now, not a traceback once the model moves."""
    import torch

    from previous_chapters import choose_device

    try:
        device = choose_device(None if name == "auto" else name)
    except (RuntimeError, ValueError) as error:
        raise UsageError(f"unusable --device {name!r}: {error}") from None
    asked = f"unusable --device {name!r}: Device {str(device)!r} was asked for"
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"{asked}, but PyTorch sees no CUDA GPU here.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{asked}, but Apple's MPS is not available here.")
    return device


def load_tokenizer():
    """GPT-2's tokenizer (Chapter 2's gpt2_tokenizer); offline without a cache, one line."""
    from previous_chapters import gpt2_tokenizer

    try:
        return gpt2_tokenizer()
    except RuntimeError as error:
        raise DownloadFailed(str(error)) from None


def stream_text(new_tokens, tokenizer):
    """Yield the text of a stream of (1, 1) token tensors (generate_stream's) piece by piece.

    A GPT-2 token may end inside a multi-byte character, so bytes are held back until
    they form whole characters.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for token in new_tokens:
        text = decoder.decode(tokenizer.decode_single_token_bytes(int(token[0, 0])))
        if text:
            yield text
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest


def load_model(args, device):
    """The model to generate with and its configuration."""
    from previous_chapters import (GPTModel, gpt2_config, gpt2_model_size, load_gpt_checkpoint,
                                   load_weights_into_gpt)

    config_name = gpt2_model_name(args.size)
    checkpoint_name = gpt2_model_size(config_name)
    if args.ckpt is not None:
        try:
            model, checkpoint = load_gpt_checkpoint(args.ckpt, device=device,
                                                    config=gpt2_config(config_name))
        except ValueError as error:
            raise UsageError(" ".join(str(error).split())) from None
        return model, checkpoint["config"]

    from gpt_download import CheckpointError, DownloadError, download_and_load_gpt2

    try:
        _, params = download_and_load_gpt2(checkpoint_name, str(args.models_dir),
                                           source=args.source)
    except (DownloadError, CheckpointError) as error:
        raise DownloadFailed(str(error)) from None
    except ValueError as error:  # e.g. a bad LLM_COURSE_DOWNLOAD_* setting
        raise UsageError(str(error)) from None
    config = gpt2_config(config_name)
    model = GPTModel(config)
    try:
        load_weights_into_gpt(model, params)
    except ValueError as error:  # the downloaded weights are not of this size
        raise DownloadFailed(f"the weights in {args.models_dir / checkpoint_name} do not fit "
                             f"GPT-2 {args.size}: {error}") from None
    return model.to(device).eval(), config


def main(argv=None):
    return run_cli("generate.py", _main, argv)


def _main(argv=None):
    args = parse_args(argv)
    check_args(args)
    device = pick_device(args.device)

    import torch

    from previous_chapters import END_OF_TEXT_ID, generate_stream, text_to_token_ids, token_ids_to_text

    tokenizer = load_tokenizer()
    model, config = load_model(args, device)
    prompt_ids = text_to_token_ids(args.prompt, tokenizer).to(device)
    if prompt_ids.shape[1] > config["context_length"]:
        print(f"note: the prompt has {prompt_ids.shape[1]} tokens; the model sees only "
              f"the last {config['context_length']}", file=sys.stderr)
    eos_id = END_OF_TEXT_ID
    if eos_id >= config["vocab_size"]:
        eos_id = None  # a model with a smaller vocabulary can't produce it

    torch.manual_seed(args.seed)
    print(token_ids_to_text(prompt_ids.cpu(), tokenizer), end="", flush=True)
    new_tokens = generate_stream(model, prompt_ids, max_new_tokens=args.tokens,
                                 context_size=config["context_length"], temperature=args.temperature,
                                 top_k=args.top_k, top_p=args.top_p, eos_id=eos_id)
    for text in stream_text(new_tokens, tokenizer):  # the end marker itself is never yielded
        print(text, end="", flush=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
