"""Number-format benchmark: the chapters' long steps in float32 and in bfloat16, side by side
in one run, with the format choose_dtype picks on this machine and how far bfloat16's
results are from float32's.

    python scripts/bench_dtypes.py                    # every item, the chapters' sizes
    python scripts/bench_dtypes.py --only ch05,ch07gen --steps 5
    python scripts/bench_dtypes.py --tiny             # a tiny model: checks, not timings

Each item runs the same weights on the same data three ways:
- float32: no autocast at all, as the chapters ran before choose_dtype;
- chosen: the chapters' path, `with autocast(device, choose_dtype(device))` (choose_dtype
  measures once, at the start; its time is printed); when it picks bfloat16 this is the
  bfloat16 run;
- bfloat16: autocast to bfloat16 forced (for the answers: a copy of the model with bfloat16
  weights, as chapter 7 answers with when choose_dtype picks bfloat16).
Items (times per unit, after one untimed warm-up unit):
- ch05: optimizer steps of chapter 5's training (124M, context 256, batch 2, the story);
- ch06: forward passes of chapter 6's classifier over batches of 8 spam messages (what its
  accuracies and frozen features cost), with the accuracies and the share of predictions
  that agree;
- ch07: optimizer steps of chapter 7's fine-tuning (batch 8 instructions, --ch7-size);
- ch07gen: chapter 7's greedy answers to test instructions, counting the answers that differ.
"difference" is the largest gap between the losses of the two formats (ch05, ch07), the
accuracies and agreement (ch06), or the answers that differ (ch07gen). bfloat16 keeps about
three significant digits, so its losses differ from float32's in the third or fourth digit.
"""

import argparse
import contextlib
import copy
import io
import json
import sys
import time
from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.data import DataLoader

from gpt_download import download_data_file
from previous_chapters import (GPTModel, InstructionDataset, add_classification_head, autocast,
                               bf16_speedup, calc_loss_batch, choose_device, choose_dtype,
                               create_dataloader_v1,
                               custom_collate_fn, generate_responses, gpt2_tokenizer,
                               model_for_answers, split_instruction_data)
from scripts.bench_chapters import OneLineParser, model_config, positive_int, spam_datasets, starting_model

DEVICE = choose_device()  # $LLM_COURSE_DEVICE picks another


@dataclass
class Row:
    item: str
    unit: str
    float32_s: float
    chosen_s: float
    bfloat16_s: float
    difference: str


ITEMS = []  # (name, function(args, tokenizer, chosen) -> Row), in the order they run


def benchmark(name):
    def register(function):
        ITEMS.append((name, function))
        return function
    return register


def size_name(args, size):
    return "tiny" if args.tiny else size


def format_context(dtype):
    """None: no context at all (float32 as before choose_dtype); else the chapters' autocast."""
    return contextlib.nullcontext() if dtype is None else autocast(DEVICE, dtype)


def wait_for_device():
    """A GPU computes asynchronously: wait for it before reading the clock."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def per_unit_seconds(run_unit, units, dtype):
    """(seconds per unit after an untimed first one, the units' results) under dtype's context."""
    with format_context(dtype):
        results = [run_unit(units[0])]  # warm-up
        wait_for_device()
        start = time.perf_counter()
        results += [run_unit(unit) for unit in units[1:]]
        wait_for_device()
        seconds = time.perf_counter() - start
    return seconds / max(1, len(units) - 1), results


def three_ways(measure, chosen):
    """measure(dtype) -> (seconds, results) for float32 as before, the chosen path, bfloat16."""
    float32 = measure(None)
    bfloat16 = measure(torch.bfloat16)
    chosen_run = bfloat16 if chosen == torch.bfloat16 else measure(torch.float32)
    return float32, chosen_run, bfloat16


def training_steps(model, batches, lr, chosen):
    """The book's training step (AdamW) on each batch, three ways, from the same weights."""
    def measure(dtype):
        torch.manual_seed(123)
        trained = copy.deepcopy(model).train()
        optimizer = torch.optim.AdamW(trained.parameters(), lr=lr, weight_decay=0.1)

        def step(batch):
            optimizer.zero_grad()
            loss = calc_loss_batch(*batch, trained, DEVICE)
            loss.backward()
            optimizer.step()
            return loss.item()
        return per_unit_seconds(step, batches, dtype)

    (f_s, f_losses), (c_s, _), (b_s, b_losses) = three_ways(measure, chosen)
    gap = max(abs(a - b) for a, b in zip(f_losses, b_losses))
    return f_s, c_s, b_s, f"losses within {gap:.1e}"


@benchmark("ch05")
def bench_ch05(args, tokenizer, chosen):
    cfg = model_config(args)
    cfg["context_length"] = 32 if args.tiny else 256
    text = download_data_file("the-verdict.txt").read_text(encoding="utf-8")
    torch.manual_seed(123)
    loader = create_dataloader_v1(text, batch_size=2, max_length=cfg["context_length"],
                                  stride=cfg["context_length"], shuffle=True, drop_last=True, num_workers=0)
    batches = list(loader)[:args.steps + 1]
    torch.manual_seed(123)
    times = training_steps(GPTModel(cfg).to(DEVICE), batches, lr=4e-4, chosen=chosen)
    return Row(f"ch05 training, {size_name(args, '124M')}", "step", *times)


@benchmark("ch06")
def bench_ch06(args, tokenizer, chosen):
    cfg = model_config(args)
    torch.manual_seed(123)
    model = add_classification_head(starting_model(args, cfg), num_classes=2).to(DEVICE).eval()
    _, val_dataset = spam_datasets(tokenizer, cfg["context_length"])
    batches = list(DataLoader(val_dataset, batch_size=8))[:args.batches + 1]

    def measure(dtype):
        def predict(batch):
            with torch.no_grad():
                return model(batch[0].to(DEVICE))[:, -1, :].argmax(dim=-1).cpu()
        return per_unit_seconds(predict, batches, dtype)

    (f_s, f_pred), (c_s, _), (b_s, b_pred) = three_ways(measure, chosen)
    labels = torch.cat([target for _, target in batches])
    f_pred, b_pred = torch.cat(f_pred), torch.cat(b_pred)
    accuracy = lambda predicted: (predicted == labels).float().mean().item() * 100  # noqa: E731
    difference = (f"accuracy {accuracy(f_pred):.1f} % vs {accuracy(b_pred):.1f} %, "
                  f"{(f_pred == b_pred).float().mean().item() * 100:.0f} % same predictions "
                  f"({len(labels)} msgs)")
    return Row(f"ch06 forward, {val_dataset.max_length} tok", "batch", f_s, c_s, b_s, difference)


def instruction_splits():
    with open(download_data_file("instruction-data.json"), encoding="utf-8") as f:
        return split_instruction_data(json.load(f))


@benchmark("ch07")
def bench_ch07(args, tokenizer, chosen):
    size = "124M" if args.tiny else args.ch7_size
    cfg = model_config(args, size)
    train_data, _, _ = instruction_splits()
    collate = partial(custom_collate_fn, device="cpu", allowed_max_length=cfg["context_length"])
    torch.manual_seed(123)
    loader = DataLoader(InstructionDataset(train_data, tokenizer), batch_size=8, shuffle=True,
                        drop_last=True, collate_fn=collate)
    batches = [batch for batch, _ in zip(loader, range(args.steps + 1))]
    times = training_steps(starting_model(args, cfg, size).to(DEVICE), batches, lr=5e-5, chosen=chosen)
    return Row(f"ch07 training, {size_name(args, size)}", "step", *times)


@benchmark("ch07gen")
def bench_ch07_answers(args, tokenizer, chosen):
    size = "124M" if args.tiny else args.ch7_size
    cfg = model_config(args, size)
    if args.tiny:  # room for a prompt and its answer, so that the batched path is the one timed
        cfg["context_length"] = 256
    model = starting_model(args, cfg, size).to(DEVICE).eval()
    _, _, test_data = instruction_splits()
    batches = [test_data[i:i + 8] for i in range(0, 8 * (args.answer_batches + 1), 8)]

    def measure(dtype):
        answering = model if dtype is None else model_for_answers(model, dtype)
        return per_unit_seconds(lambda entries: generate_responses(answering, tokenizer, entries,
                                                                   args.ch7_tokens), batches, None)

    (f_s, f_answers), (c_s, _), (b_s, b_answers) = three_ways(measure, chosen)
    f_answers, b_answers = sum(f_answers, []), sum(b_answers, [])
    differing = sum(a != b for a, b in zip(f_answers, b_answers))
    return Row(f"ch07 answers, {size_name(args, size)}, <={args.ch7_tokens} tok", "8 answers", f_s, c_s, b_s,
               f"{differing} of {len(f_answers)} answers differ")


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [name for name, _ in ITEMS]
    parser.add_argument("--only", type=lambda text: text.split(","), default=names,
                        help="comma-separated items to run (default: all): " + ",".join(names))
    parser.add_argument("--weights", choices=["download", "random"], default="download",
                        help="download: GPT-2 through the course's download code (or its mirror); "
                             "random: seeded random weights of the same shape")
    parser.add_argument("--steps", type=positive_int, default=3,
                        help="timed optimizer steps (ch05, ch07), after one untimed")
    parser.add_argument("--batches", type=positive_int, default=3,
                        help="timed batches of 8 messages (ch06), after one untimed")
    parser.add_argument("--answer-batches", type=positive_int, default=1,
                        help="timed batches of 8 answers (ch07gen), after one untimed")
    parser.add_argument("--ch7-size", choices=["124M", "355M"], default="355M")
    parser.add_argument("--ch7-tokens", type=positive_int, default=256,
                        help="most new tokens per answer (default: 256, as chapter 7)")
    parser.add_argument("--tiny", action="store_true",
                        help="a tiny random model: checks that every path runs (timings mean nothing)")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(names)
    if unknown:
        parser.error(f"unknown item(s) {', '.join(sorted(unknown))}; choose from {','.join(names)}")
    return args


def print_table(rows, chosen):
    print(f"device {DEVICE}: choose_dtype picks {str(chosen).removeprefix('torch.')} "
          f"(a matrix product ran {bf16_speedup(DEVICE.type):.2f}x as fast in bfloat16)")
    print(f"{'item':<34} {'unit':>9} {'float32 s':>10} {'chosen s':>9} {'bfloat16 s':>11} "
          f"{'bf16 speed-up':>14} {'chosen/fp32':>12}  difference")
    for r in rows:
        print(f"{r.item:<34} {r.unit:>9} {r.float32_s:>10.2f} {r.chosen_s:>9.2f} {r.bfloat16_s:>11.2f} "
              f"{r.float32_s / r.bfloat16_s:>13.2f}x {r.chosen_s / r.float32_s:>11.3f}x  {r.difference}")


def main(argv=None):
    args = parse_args(argv)
    tokenizer = gpt2_tokenizer()
    start = time.perf_counter()
    chosen = choose_dtype(DEVICE)
    print(f"choose_dtype took {time.perf_counter() - start:.2f} s", flush=True)
    rows = []
    for name, run in ITEMS:
        if name in args.only:
            print(f"[{name}] float32, bfloat16, then the chosen format...", flush=True)
            with contextlib.redirect_stderr(io.StringIO()):  # the loops' progress bars
                rows.append(run(args, tokenizer, chosen))
    print()
    print_table(rows, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
