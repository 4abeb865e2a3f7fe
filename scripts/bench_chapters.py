"""Learner-time benchmark: the course's default path against the plain book-style path,
on the steps of chapters 5-7 where a learner waits, side by side in one run.

    python scripts/bench_chapters.py                       # every item, the chapters' sizes
    python scripts/bench_chapters.py --only ch06 --ch06-messages 200
    python scripts/bench_chapters.py --ch7-size 124M --ch7-steps 5
    python scripts/bench_chapters.py --tiny                # a tiny model: checks, not timings

Each item trains the same starting weights on the same data twice, the book's way and the
course's way, times both, and checks that they compute the same thing:
- ch05: one or more epochs of train_model_simple (124M shape, context 256, batch 2, the-verdict.txt).
  Book-style: MultiHeadAttention's written-out attention (use_sdpa=False) and plain AdamW.
  Course: scaled_dot_product_attention (the default) and make_optimizer (fused AdamW where
  PyTorch has it). Chapter 5 trains from random weights, so both start from the same seeded ones.
- ch06: the book's fine-tuning run of train_classifier_simple (5 epochs; the last block and the
  head trainable) on the spam messages. Book-style: the whole model every batch. Course: the
  frozen layers computed once (frozen_features, TrainableTop; the course's time includes that).
- ch07: --ch7-steps optimizer steps of train_model_simple, batch 8, on the instruction data,
  as chapter 7 runs them (evaluations every 5 steps on 5 batches, a sample at the end);
  book-style and course as in ch05.
- ch07gen: chapter 7's answers to the test instructions (--ch7-answers, up to --ch7-tokens
  new tokens each, greedy). Book-style: generate_response, one instruction at a time with
  the uncached generate. Course: generate_responses, 8 per batch with the KV cache. The
  answers must be identical, text for text ("max diff" counts those that differ).
Dropout is off (drop_rate 0.0) in every item: with dropout on, the fused attention draws its
own random masks, so the two runs would differ by chance and could not be compared.

Agreement: ch06 must give identical losses and accuracies (up to float rounding, 1e-5). In
ch05 and ch07 the two attention kernels and optimizers round differently (about 1e-7 per
operation); training amplifies that a little, so their recorded losses must agree within
LOSS_TOLERANCE, far below the change a real difference makes (a wrong mask or a wrong
update moves the loss by tenths within a few steps).

The weights come from the course's download code (`--weights download`: OpenAI's checkpoint,
or the offline mirror's random-valued one of the same shape) or are random of the real shape
(`--weights random`). Timings on a shared machine are noisy; never compare them across runs.
"""

import argparse
import contextlib
import copy
import csv
import io
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from gpt_download import download_and_load_gpt2, download_data_file
from previous_chapters import (
    GPTModel,
    InstructionDataset,
    MultiHeadAttention,
    SpamDataset,
    TrainableTop,
    add_classification_head,
    create_balanced_dataset,
    create_dataloader_v1,
    custom_collate_fn,
    download_and_unzip_spam_data,
    frozen_features,
    generate_response,
    generate_responses,
    gpt2_config,
    gpt2_tokenizer,
    load_weights_into_gpt,
    make_optimizer,
    random_split,
    split_instruction_data,
    train_classifier_simple,
    train_model_simple,
)

LOSS_TOLERANCE = 1e-3    # ch05, ch07: different kernels and optimizers (see the docstring)
IDENTICAL_TOLERANCE = 1e-5  # ch06: the same arithmetic, in other batches
TINY_CONFIG = {"vocab_size": 50257, "context_length": 32, "emb_dim": 32, "n_heads": 2,
               "n_layers": 3, "drop_rate": 0.0, "qkv_bias": True}
SIZES = {"124M": "gpt2-small (124M)", "355M": "gpt2-medium (355M)"}
START_CONTEXT = "Every effort moves you"


@dataclass
class Result:
    item: str
    book_s: float
    course_s: float
    max_diff: float
    tolerance: float

    @property
    def agree(self):
        return self.max_diff <= self.tolerance


ITEMS = []  # (name, function(args, tokenizer) -> Result), in the order they run


def benchmark(name):
    def register(function):
        ITEMS.append((name, function))
        return function
    return register


# ---------------------------------------------------------------------------- helpers

def model_config(args, size="124M"):
    if args.tiny:
        return dict(TINY_CONFIG)
    return {**gpt2_config(SIZES[size]), "drop_rate": 0.0}


def starting_model(args, cfg, size="124M"):
    """A GPTModel with the size's weights (downloaded, or seeded random ones of its shape)."""
    torch.manual_seed(123)
    model = GPTModel(cfg)
    if not args.tiny and args.weights == "download":
        _, params = download_and_load_gpt2(size)
        load_weights_into_gpt(model, params)
    return model


def book_style(model):
    """The written-out attention of chapter 3 in every MultiHeadAttention of model."""
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.use_sdpa = False
    return model


def timed(function):
    """(function's result, seconds), with the training loops' own prints kept quiet."""
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = function()
    return result, time.perf_counter() - start


def max_difference(histories_a, histories_b):
    """Largest absolute difference between matching recorded values (inf if they differ in length)."""
    diff = 0.0
    for a, b in zip(histories_a, histories_b):
        if len(a) != len(b):
            return float("inf")
        diff = max([diff, *(abs(x - y) for x, y in zip(a, b))])
    return diff


def both_language_model_runs(name, model, make_train_loader, val_loader, lr, num_epochs,
                             tokenizer):
    """train_model_simple the book's way and the course's way, from the same weights."""
    def run(course):
        trained = copy.deepcopy(model)
        if course:
            optimizer = make_optimizer(trained, lr=lr, weight_decay=0.1)
        else:
            book_style(trained)
            optimizer = torch.optim.AdamW(trained.parameters(), lr=lr, weight_decay=0.1)
        train_loader = make_train_loader()  # the same shuffled order both times
        return timed(lambda: train_model_simple(
            trained, train_loader, val_loader, optimizer, "cpu", num_epochs=num_epochs,
            eval_freq=5, eval_iter=5, start_context=START_CONTEXT, tokenizer=tokenizer))

    book_history, book_s = run(course=False)
    course_history, course_s = run(course=True)
    return Result(name, book_s, course_s, max_difference(book_history[:2], course_history[:2]),
                  LOSS_TOLERANCE)


# ---------------------------------------------------------------------------- the items

@benchmark("ch05")
def bench_ch05_training(args, tokenizer):
    cfg = model_config(args)
    cfg["context_length"] = 32 if args.tiny else 256  # chapter 5 trains with context 256
    text = download_data_file("the-verdict.txt").read_text(encoding="utf-8")
    if args.tiny:
        text = text[:4000]  # about 1,000 tokens: a few steps
    split = int(0.9 * len(text))
    loader = partial(create_dataloader_v1, batch_size=2, max_length=cfg["context_length"],
                     stride=cfg["context_length"], num_workers=0)

    def train_loader():
        torch.manual_seed(123)  # create_dataloader_v1 shuffles with the global generator
        return loader(text[:split], shuffle=True, drop_last=True)

    torch.manual_seed(123)
    model = GPTModel(cfg)  # chapter 5 starts from random weights
    return both_language_model_runs(f"ch05 train {args.ch05_epochs} epoch(s)", model, train_loader,
                                    loader(text[split:], shuffle=False, drop_last=False),
                                    lr=4e-4, num_epochs=args.ch05_epochs, tokenizer=tokenizer)


@benchmark("ch06")
def bench_ch06_training(args, tokenizer):
    cfg = model_config(args)
    torch.manual_seed(123)
    model = add_classification_head(starting_model(args, cfg), num_classes=2)
    train_dataset, val_dataset = spam_datasets(tokenizer, cfg["context_length"], args.ch06_max_length)
    messages = min(args.ch06_messages or len(train_dataset), len(train_dataset))

    def train_loader():
        return DataLoader(Subset(train_dataset, range(messages)), batch_size=8, shuffle=True,
                          drop_last=True, generator=torch.Generator().manual_seed(123))

    def train(trained, train_loader_, val_loader_):
        optimizer = torch.optim.AdamW(trained.parameters(), lr=5e-5, weight_decay=0.1)
        return train_classifier_simple(trained, train_loader_, val_loader_, optimizer, "cpu",
                                       num_epochs=args.ch06_epochs, eval_freq=50, eval_iter=5)

    val_loader = DataLoader(val_dataset, batch_size=8)
    book_model, course_model = copy.deepcopy(model), copy.deepcopy(model)
    book_history, book_s = timed(lambda: train(book_model, train_loader(), val_loader))

    def course_run():
        features = frozen_features(course_model, train_loader(), "cpu")
        val_features = frozen_features(course_model, val_loader, "cpu")
        return train(TrainableTop(course_model), features, val_features)

    course_history, course_s = timed(course_run)
    return Result(f"ch06 train {args.ch06_epochs} ep, {messages} msgs x {train_dataset.max_length} tok", book_s, course_s,
                  max_difference(book_history[:4], course_history[:4]), IDENTICAL_TOLERANCE)


def spam_datasets(tokenizer, context_length, max_length=None):
    """The chapter's balanced, split spam messages as (training, validation) SpamDatasets,
    cut to max_length tokens (None: as long as the longest training message, as the book)."""
    df = create_balanced_dataset(read_spam_messages(download_and_unzip_spam_data()))
    df["Label"] = df["Label"].map({"ham": 0, "spam": 1})
    train_df, val_df, _ = random_split(df, 0.7, 0.1)
    with tempfile.TemporaryDirectory() as tmp:
        train_df.to_csv(Path(tmp) / "train.csv", index=False)
        val_df.to_csv(Path(tmp) / "validation.csv", index=False)
        train_dataset = SpamDataset(Path(tmp) / "train.csv", tokenizer, max_length=max_length,
                                    context_length=context_length)
        val_dataset = SpamDataset(Path(tmp) / "validation.csv", tokenizer,
                                  max_length=train_dataset.max_length, context_length=context_length)
    return train_dataset, val_dataset


def read_spam_messages(data_file):
    return pd.read_csv(data_file, sep="\t", header=None, names=["Label", "Text"],
                       quoting=csv.QUOTE_NONE)


@benchmark("ch07")
def bench_ch07_training(args, tokenizer):
    size = "124M" if args.tiny else args.ch7_size
    cfg = model_config(args, size)
    with open(download_data_file("instruction-data.json"), encoding="utf-8") as f:
        train_data, val_data, _ = split_instruction_data(json.load(f))
    collate = partial(custom_collate_fn, device="cpu", allowed_max_length=cfg["context_length"])
    batch_size = 8
    loader = partial(DataLoader, batch_size=batch_size, collate_fn=collate, num_workers=0)
    train_subset = InstructionDataset(train_data[:args.ch7_steps * batch_size], tokenizer)

    def train_loader():
        torch.manual_seed(123)  # chapter 7's training loader shuffles with the global generator
        return loader(train_subset, shuffle=True, drop_last=True)

    return both_language_model_runs(
        f"ch07 {size} train {args.ch7_steps} step(s)", starting_model(args, cfg, size), train_loader,
        loader(InstructionDataset(val_data, tokenizer), shuffle=False, drop_last=False),
        lr=5e-5, num_epochs=1, tokenizer=tokenizer)


@benchmark("ch07gen")
def bench_ch07_generation(args, tokenizer):
    size = "124M" if args.tiny else args.ch7_size
    cfg = model_config(args, size)
    if args.tiny:  # room for a prompt and its answer, so that the batched path is the one timed
        cfg["context_length"] = 256
    model = starting_model(args, cfg, size).eval()
    with open(download_data_file("instruction-data.json"), encoding="utf-8") as f:
        _, _, test_data = split_instruction_data(json.load(f))
    entries = test_data[:args.ch7_answers]
    book, book_s = timed(lambda: [generate_response(model, tokenizer, entry, args.ch7_tokens)
                                  for entry in entries])
    course, course_s = timed(lambda: generate_responses(model, tokenizer, entries, args.ch7_tokens))
    differing = sum(a != b for a, b in zip(book, course))  # greedy: the texts must be identical
    return Result(f"ch07 {size} answer {len(entries)} x <={args.ch7_tokens} tok", book_s, course_s,
                  float(differing), 0.0)


# ---------------------------------------------------------------------------- the CLI

class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        print(f"bench_chapters.py: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def item_names(text):
    known = [name for name, _ in ITEMS]
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown item(s) {', '.join(unknown) or text!r}; "
                                         f"choose from {','.join(known)}")
    return names


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", type=item_names, default=None,
                        help="comma-separated items to run (default: all): "
                             + ",".join(name for name, _ in ITEMS))
    parser.add_argument("--weights", choices=["download", "random"], default="download",
                        help="download: GPT-2 through the course's download code (or its mirror); "
                             "random: seeded random weights of the same shape")
    parser.add_argument("--ch05-epochs", type=positive_int, default=1)
    parser.add_argument("--ch06-messages", type=positive_int, default=None,
                        help="train on the first N training messages (default: all 1,045)")
    parser.add_argument("--ch06-max-length", type=positive_int, default=None,
                        help="cut messages to N tokens, as the notebook's quick run does with 32 "
                             "(default: the longest message, 120 tokens, as the book)")
    parser.add_argument("--ch06-epochs", type=positive_int, default=5,
                        help="the book's run has 5 (the frozen features are computed once for all)")
    parser.add_argument("--ch7-size", choices=sorted(SIZES), default="355M")
    parser.add_argument("--ch7-steps", type=positive_int, default=10)
    parser.add_argument("--ch7-answers", type=positive_int, default=110,
                        help="test instructions answered in ch07gen (default: all 110)")
    parser.add_argument("--ch7-tokens", type=positive_int, default=256,
                        help="most new tokens per answer in ch07gen (default: 256, as chapter 7)")
    parser.add_argument("--tiny", action="store_true",
                        help="a tiny random model and short contexts: checks that the paths agree, "
                             "in seconds (its timings mean nothing)")
    return parser.parse_args(argv)


def print_table(results):
    print(f"{'item':<38} {'book-style s':>12} {'course s':>9} {'speed-up':>9}  outputs agree")
    for r in results:
        verdict = "yes" if r.agree else "NO"
        print(f"{r.item:<38} {r.book_s:>12.1f} {r.course_s:>9.1f} {r.book_s / r.course_s:>8.2f}x  "
              f"{verdict} (max diff {r.max_diff:.1e}, tolerance {r.tolerance:.0e})")


def main(argv=None):
    args = parse_args(argv)
    selected = [(name, run) for name, run in ITEMS if args.only is None or name in args.only]
    tokenizer = gpt2_tokenizer()
    results = []
    for name, run in selected:
        print(f"[{name}] running {run.__name__} (book-style, then course)...", flush=True)
        result = run(args, tokenizer)
        print(f"[{name}] book-style {result.book_s:.1f} s, course {result.course_s:.1f} s", flush=True)
        results.append(result)
    print()
    print_table(results)
    return 0 if all(r.agree for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
