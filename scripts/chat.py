"""Talk to an instruction-tuned GPT-2 (Chapter 7), or let it answer the test set.

Examples (run from the repository root):

    python scripts/chat.py --ask "Name three primary colors."
    python scripts/chat.py --ckpt models/gpt2-medium355M-sft.pth
    python scripts/chat.py --ckpt models/gpt2-medium355M-sft.pth \\
        --ask "Translate into German." --input "Good morning"
    python scripts/chat.py --ckpt models/gpt2-medium355M-sft.pth --gen-test-set \\
        --out data/instruction-data-with-response.json

Without --ask or --gen-test-set it starts an interactive loop: type an instruction,
then an optional input (Enter for none); type exit (or press Ctrl-D) to quit.

--ckpt reads the course's checkpoint format (save_gpt_checkpoint, Chapter 5), which is
how Chapter 7 saves the fine-tuned model (section 7.7: models/gpt2-small124M-sft.pth in
its quick run, models/gpt2-medium355M-sft.pth in the full one). Without --ckpt, the
newest such file in --models-dir is used; when there is none, OpenAI's GPT-2 weights for
--size are downloaded into --models-dir: those models were never taught to follow
instructions, so expect them to ramble.

--gen-test-set answers every instruction of the test split (Chapter 7's 85/5/10 split
of --data, by default the course's instruction-data.json, downloaded if needed),
--batch-size of them at a time with the KV cache (the same answers as one at a time,
Section 7.7.1), and writes the entries with an added "model_response" field to --out as
JSON.

Prompts use the Alpaca format of Chapter 7. Decoding is greedy by default; a
--temperature above 0 samples (optionally with --top_k / --top_p), and --seed makes it
repeatable. An answer ends at GPT-2's <|endoftext|> token or after --tokens tokens; it is
printed as it is generated, with the KV cache of Chapter 5 (generate_stream).
"""

import argparse
import json
import os
import sys
from pathlib import Path

# Make the course modules (and generate.py, whose loading code we share) importable.

from scripts.generate import (
    SIZES, ArgumentParser, DownloadFailed, UsageError, add_decoding_args, add_source_arg,
    check_decoding_args, check_writable, load_model, load_tokenizer, pick_device, run_cli, stream_text)

EXIT_WORDS = {"exit", "quit"}
SFT_CHECKPOINTS = "gpt2-*-sft.pth"  # what Chapter 7 section 7.7 saves in models/
MADE_BY = "ch07_instruction.ipynb section 7.7 saves one"


def find_sft_checkpoint(models_dir):
    """The newest checkpoint Chapter 7 saved in `models_dir`, or None."""
    found = sorted(Path(models_dir).glob(SFT_CHECKPOINTS), key=lambda path: path.stat().st_mtime)
    return found[-1] if found else None


def parse_args(argv=None):
    parser = ArgumentParser(
        prog="chat.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--ask", metavar="INSTRUCTION",
                      help="answer this one instruction and exit")
    what.add_argument("--gen-test-set", action="store_true",
                      help="answer the test split of --data and write --out")
    parser.add_argument("--input", default="",
                        help="with --ask: the material the instruction works on (optional)")
    parser.add_argument("--ckpt", type=Path,
                        help="the fine-tuned model (a checkpoint saved by Chapter 7)")
    parser.add_argument("--size", choices=SIZES, default="small",
                        help="GPT-2 size to download when there is no --ckpt (default: small); "
                             "with --ckpt, only used for a bare state_dict")
    parser.add_argument("--models-dir", type=Path, default=Path("models"),
                        help="where OpenAI's weights are stored (default: models)")
    add_source_arg(parser)
    parser.add_argument("--data", type=Path, default=None,
                        help="instruction data JSON for --gen-test-set (default: download "
                             "instruction-data.json into data/)")
    parser.add_argument("--out", type=Path,
                        default=Path("data") / "instruction-data-with-response.json",
                        help="output JSON of --gen-test-set "
                             "(default: data/instruction-data-with-response.json)")
    parser.add_argument("--limit", type=int, default=None,
                        help="with --gen-test-set: answer only the first N test entries")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="with --gen-test-set: instructions answered per forward pass (default: 8)")
    add_decoding_args(parser, default_tokens=256)
    return parser.parse_args(argv)


def check_args(args):
    if args.ask is not None and not args.ask.strip():
        raise UsageError("the instruction (--ask) is empty: give the model something to do")
    if args.input and args.ask is None:
        raise UsageError("--input goes with --ask (in the interactive loop you are asked for it)")
    if args.tokens < 1:
        raise UsageError(f"--tokens must be at least 1, got {args.tokens}")
    check_decoding_args(args)
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.ckpt is not None and not args.ckpt.is_file():
        raise UsageError(f"checkpoint file not found: {args.ckpt} ({MADE_BY})")
    if args.data is not None and not args.data.is_file():
        raise UsageError(f"data file not found: {args.data}")
    if args.gen_test_set:
        check_writable(args.out)  # before the (long) generation, not after it


def write_atomically(path, text):
    """Write `text` to `path` whole or not at all (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_test_split(data_path):
    """The test split (Chapter 7) of an instruction-data JSON file."""
    from previous_chapters import split_instruction_data

    if data_path is None:
        from gpt_download import DownloadError, download_data_file

        try:
            data_path = download_data_file("instruction-data.json")
        except DownloadError as error:
            raise DownloadFailed(str(error)) from None
    try:
        data = json.loads(Path(data_path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{data_path} is not valid JSON: {error}") from None
    except OSError as error:
        raise UsageError(f"cannot read {data_path}: {error.strerror or error}") from None
    if not isinstance(data, list) or not all(
            isinstance(e, dict) and {"instruction", "output"} <= e.keys() for e in data):
        raise UsageError(f"{data_path} must hold a JSON list of objects with "
                         "'instruction', 'input' (optional) and 'output' fields")
    _, _, test_data = split_instruction_data(data)
    if not test_data:
        raise UsageError(f"{data_path} has {len(data)} entries, too few for a test split "
                         "(10% of them, rounded down)")
    return test_data


def main(argv=None):
    return run_cli("chat.py", _main, argv)


def _main(argv=None):
    args = parse_args(argv)
    check_args(args)
    interactive = args.ask is None and not args.gen_test_set
    if interactive and sys.stdin is None:
        raise UsageError("standard input is closed: give the instruction with --ask")
    device = pick_device(args.device)

    import torch

    from previous_chapters import (END_OF_TEXT_ID, RESPONSE_HEADER, format_input, generate_responses,
                                   generate_stream, text_to_token_ids)

    test_data = load_test_split(args.data) if args.gen_test_set else None
    tokenizer = load_tokenizer()
    if args.ckpt is None:
        args.ckpt = find_sft_checkpoint(args.models_dir)
        if args.ckpt is not None:
            print(f"chat.py: using {args.ckpt}, the newest model Chapter 7 saved "
                  "(--ckpt picks another)", file=sys.stderr)
        else:
            print(f"chat.py: no fine-tuned model in {args.models_dir} ({MADE_BY}); using OpenAI's "
                  f"GPT-2 {args.size}, which was never taught to follow instructions",
                  file=sys.stderr)
    model, config = load_model(args, device)
    decoding = dict(max_new_tokens=args.tokens, temperature=args.temperature,
                    top_k=args.top_k, top_p=args.top_p, eos_id=END_OF_TEXT_ID)

    def print_answer(instruction, input_text=""):
        """Print the answer as it is generated, trimmed as Chapter 7's extract_response does."""
        prompt = format_input({"instruction": instruction, "input": input_text}) + RESPONSE_HEADER
        new_tokens = generate_stream(model, text_to_token_ids(prompt, tokenizer).to(device),
                                     context_size=config["context_length"], **decoding)
        repeated_header = RESPONSE_HEADER.strip()  # fine-tuned models sometimes begin with it
        held = ""  # the answer's start, held back while it may be blanks or a repeated header
        for text in stream_text(new_tokens, tokenizer):
            if held is not None:
                held = (held + text).lstrip()
                text = held.removeprefix(repeated_header).lstrip()
                if not text or repeated_header.startswith(held):
                    continue
                held = None
            print(text, end="", flush=True)
        print("(empty response)" if held is not None else "")

    torch.manual_seed(args.seed)
    if args.ask is not None:
        print_answer(args.ask.strip(), args.input)
    elif args.gen_test_set:
        entries = test_data[:args.limit]
        answers = generate_responses(model, tokenizer, entries, batch_size=args.batch_size, **decoding)
        results = [{**entry, "model_response": answer} for entry, answer in zip(entries, answers)]
        write_atomically(args.out, json.dumps(results, indent=4))
        print(f"wrote {len(results)} responses to {args.out}")
    else:
        print("Type an instruction (exit to quit).")
        while True:
            try:
                instruction = input("\nInstruction> ").strip()
                if instruction.lower() in EXIT_WORDS:
                    break
                if not instruction:
                    continue
                input_text = input("Input (Enter for none)> ").strip()
            except EOFError:  # Ctrl-D
                print()
                break
            except UnicodeDecodeError:
                raise UsageError("the input is not UTF-8 text") from None
            print_answer(instruction, input_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
