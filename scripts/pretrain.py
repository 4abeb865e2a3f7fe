"""Pretrain a GPT model on a text file, as in Chapter 5: one process, or several with torchrun.

    python scripts/pretrain.py --text data/the-verdict.txt --steps 200
    torchrun --standalone --nproc_per_node 2 scripts/pretrain.py --text data/the-verdict.txt --steps 200
    python scripts/pretrain.py --text data/the-verdict.txt --steps 400 --resume   # continue to step 400

Under torchrun every process holds a full copy of the model and trains on its own share
of each batch; DistributedDataParallel averages the gradients across processes before each
optimizer step, so the result is (up to rounding) that of one process working through the
whole batch. The backend is gloo on CPUs and nccl on NVIDIA GPUs (one GPU per process).

--batch-size is the GLOBAL batch: the sequences that go into one optimizer step, summed
over processes and accumulation steps. It must be divisible by
(number of processes) x --accumulation-steps. The data order depends only on --seed, not
on the number of processes, so a run on 2 processes sees the same batches as a run on 1.

The checkpoint (--out) is written by the first process only, in the course's format
({"config", "model_state_dict", "optimizer_state_dict"}, readable by load_gpt_checkpoint
and scripts/generate.py --ckpt) plus "step". --resume loads it and carries on from that
step, with the same data order and learning-rate schedule as an uninterrupted run (with
dropout, the random dropout masks after resuming differ from an uninterrupted run's).
Without --text, the short story of Chapter 5 is downloaded (LLM_COURSE_MIRROR applies), and
so is a missing --text that names one of the course's data files (data/the-verdict.txt).
"""

import argparse
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from scripts.generate import (
    ArgumentParser, CliError, UsageError, check_writable, load_tokenizer, pick_device, run_cli)
from previous_chapters import (
    GPT_CONFIG_124M,
    GPTDatasetV1,
    GPTModel,
    accumulation_groups,
    autocast,
    calc_loss_batch,
    calc_loss_loader,
    choose_dtype,
    cosine_lr,
    make_optimizer,
    save_gpt_checkpoint,
)
from safe_checkpoints import check_checkpoint_config, read_checkpoint


class TrainingFailed(CliError):
    """Training went wrong (e.g. the loss became nan): one line, exit code 1."""

    exit_code = 1


def parse_args(argv=None):
    parser = ArgumentParser(prog="pretrain.py", description=__doc__.split("\n\n")[0],
                            epilog=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--text", type=Path, help="training text (default: Chapter 5's short story)")
    data.add_argument("--val-fraction", type=float, default=0.1, help="share of the text held out (end)")
    model = parser.add_argument_group("model (ignored with --resume: the checkpoint's configuration is used)")
    model.add_argument("--context-length", type=int, default=256)
    model.add_argument("--emb-dim", type=int, default=GPT_CONFIG_124M["emb_dim"])
    model.add_argument("--n-layers", type=int, default=GPT_CONFIG_124M["n_layers"])
    model.add_argument("--n-heads", type=int, default=GPT_CONFIG_124M["n_heads"])
    model.add_argument("--drop-rate", type=float, default=GPT_CONFIG_124M["drop_rate"])
    train = parser.add_argument_group("training")
    train.add_argument("--steps", type=int, default=200, help="optimizer steps in total")
    train.add_argument("--batch-size", type=int, default=8, help="global batch, in sequences")
    train.add_argument("--accumulation-steps", type=int, default=1)
    train.add_argument("--lr", type=float, default=4e-4, help="peak learning rate")
    train.add_argument("--min-lr", type=float, default=None, help="cosine decay to this (default: constant lr)")
    train.add_argument("--warmup-steps", type=int, default=0)
    train.add_argument("--weight-decay", type=float, default=0.1)
    train.add_argument("--max-grad-norm", type=float, default=None,
                       help="after the warm-up, clip the gradients to this norm")
    train.add_argument("--seed", type=int, default=123)
    train.add_argument("--device", help="cpu, cuda, mps (default: choose_device())")
    train.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                       help="number format of the matrix products (bfloat16 autocast keeps the weights "
                            "float32); auto: choose_dtype(), bfloat16 only where it is fast")
    train.add_argument("--compile", action="store_true", help="torch.compile the model")
    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("models/pretrain.pth"), help="checkpoint file")
    out.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    out.add_argument("--stop-after", type=int, default=0,
                     help="stop (and save) after this many steps of this run, e.g. to fit a time slot; "
                          "--resume carries on (0: run to --steps)")
    out.add_argument("--save-every", type=int, default=0, help="also save every N steps (0: at the end)")
    out.add_argument("--eval-every", type=int, default=50, help="validation loss every N steps (0: never)")
    out.add_argument("--eval-batches", type=int, default=5)
    out.add_argument("--log-every", type=int, default=10)
    out.add_argument("--log-file", type=Path, help="append one JSON line per step (first process)")
    args = parser.parse_args(argv)
    problem = check_args(args)
    if problem:
        parser.error(problem)
    if int(os.environ.get("RANK", "0")) == 0:
        check_writable(args.out)  # now, not after the training
    return args


def check_args(args):
    """What is wrong with the arguments, in one line, or None (argparse checked the types)."""
    at_least = {"--steps": (args.steps, 1), "--batch-size": (args.batch_size, 1),
                "--accumulation-steps": (args.accumulation_steps, 1),
                "--context-length": (args.context_length, 1), "--emb-dim": (args.emb_dim, 1),
                "--n-layers": (args.n_layers, 1), "--n-heads": (args.n_heads, 1),
                "--log-every": (args.log_every, 1), "--eval-batches": (args.eval_batches, 1),
                "--stop-after": (args.stop_after, 0), "--save-every": (args.save_every, 0),
                "--eval-every": (args.eval_every, 0), "--warmup-steps": (args.warmup_steps, 0)}
    for name, (value, low) in at_least.items():
        if value < low:
            return f"{name} must be at least {low}, got {value}"
    if args.emb_dim % args.n_heads:
        return f"--emb-dim {args.emb_dim} is not divisible by --n-heads {args.n_heads}"
    if not 0 <= args.seed < 2**63:
        return f"--seed must be from 0 to 2**63 - 1, got {args.seed}"
    ranges = {"--val-fraction": (args.val_fraction, 0, 1, "from 0 up to (not including) 1"),
              "--drop-rate": (args.drop_rate, 0, 1, "from 0 up to (not including) 1")}
    for name, (value, low, high, words) in ranges.items():
        if not (math.isfinite(value) and low <= value < high):
            return f"{name} must be {words}, got {value}"
    positive = {"--lr": args.lr, "--max-grad-norm": args.max_grad_norm}
    for name, value in positive.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            return f"{name} must be a number above 0, got {value}"
    for name, value in {"--min-lr": args.min_lr, "--weight-decay": args.weight_decay}.items():
        if value is not None and not (math.isfinite(value) and value >= 0):
            return f"{name} must be a number >= 0, got {value}"
    if args.text is not None and not args.text.is_file() and not is_course_data_file(args.text):
        return f"--text {args.text}: no such file"
    if args.out.is_dir():
        return f"--out {args.out} is a folder; give a file name"
    return None


def is_course_data_file(path):
    """Whether `path` names one of the files gpt_download.download_data_file fetches."""
    from gpt_download import DATA_FILES

    return path.name in DATA_FILES


def setup_distributed(device_name):
    """(rank, world_size, device); starts the process group when run under torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world_size == 1:
        return 0, 1, device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world_size, device


def mean_over_processes(value, world_size, device):
    if world_size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / world_size


def step_batches(loader, sampler, steps_per_epoch, accumulation_steps, start_step):
    """Yield the micro-batches of every optimizer step from `start_step` on, epoch after epoch.

    Each epoch makes steps_per_epoch steps, as in train_model: accumulation_groups drops the
    micro-batches left over at an epoch's end. The sampler's order depends on the epoch alone,
    so step s gets the same data whether the run started at 0 or resumed at s.
    """
    epoch, skip = divmod(start_step, steps_per_epoch)
    while True:
        sampler.set_epoch(epoch)
        for i, step_micro_batches in enumerate(accumulation_groups(loader, accumulation_steps)):
            if i >= skip:
                yield step_micro_batches
        epoch, skip = epoch + 1, 0


def save_checkpoint(path, model, config, optimizer, step):
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise TrainingFailed(f"the weights hold nan or inf values at step {step}; {path} was "
                             "not written. Lower --lr or set --max-grad-norm, then train again.")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_gpt_checkpoint(path, model, config, optimizer, step=step)  # whole or not at all


def main(argv=None):
    return run_cli("pretrain.py", train, argv)


def load_resume_checkpoint(path, device):
    """The checkpoint --resume continues from, checked; UsageError if it can't be used."""
    try:
        checkpoint = read_checkpoint(path, device)
    except (FileNotFoundError, ValueError) as error:
        raise UsageError(f"--resume: {error}") from None
    if not {"config", "model_state_dict", "optimizer_state_dict", "step"} <= checkpoint.keys():
        raise UsageError(f"--resume: {path} was not written by pretrain.py (it needs config, "
                         "model_state_dict, optimizer_state_dict and step)")
    step = checkpoint["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UsageError(f"--resume: {path} records step {step!r}")
    try:
        check_checkpoint_config(checkpoint["config"], checkpoint["model_state_dict"], path)
    except ValueError as error:
        raise UsageError(f"--resume: {error}") from None
    return checkpoint


def train(argv=None):
    args = parse_args(argv)
    rank, world_size, device = setup_distributed(args.device)
    is_main = rank == 0

    def log(message):
        if is_main:
            print(message, flush=True)

    if args.batch_size % (world_size * args.accumulation_steps):
        raise UsageError(f"--batch-size {args.batch_size} is not divisible by {world_size} processes "
                         f"x {args.accumulation_steps} accumulation steps")
    micro_batch_size = args.batch_size // (world_size * args.accumulation_steps)

    checkpoint = None
    if args.resume:
        checkpoint = load_resume_checkpoint(args.out, device)
        config = checkpoint["config"]
    else:
        config = {**GPT_CONFIG_124M, "context_length": args.context_length, "emb_dim": args.emb_dim,
                  "n_layers": args.n_layers, "n_heads": args.n_heads, "drop_rate": args.drop_rate}

    # Data: the same split and windows as Chapter 5.
    if args.text is None or not args.text.is_file():  # the story, or a course file not there yet
        from gpt_download import DownloadError, download_data_file
        try:
            args.text = (download_data_file("the-verdict.txt") if args.text is None else
                         download_data_file(args.text.name, data_dir=args.text.parent))
        except DownloadError as error:
            raise TrainingFailed(str(error)) from None
    try:
        text = args.text.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(f"--text {args.text} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start:,})") from None
    split = int(len(text) * (1 - args.val_fraction))
    tokenizer = load_tokenizer()
    context_length = config["context_length"]
    try:
        train_set = GPTDatasetV1(text[:split], tokenizer, context_length, stride=context_length)
    except ValueError as error:  # too little text for one sequence
        raise UsageError(f"--text {args.text}: {error}") from None
    # Even on one process: the sampler makes the data order independent of the process count.
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=args.seed, drop_last=True)
    train_loader = DataLoader(train_set, batch_size=micro_batch_size, sampler=sampler, drop_last=True)
    steps_per_epoch = len(train_loader) // args.accumulation_steps
    if steps_per_epoch == 0:
        raise UsageError(f"The training text gives {len(train_set)} sequences of {context_length} tokens, "
                         f"fewer than one batch of {args.batch_size}: lower --batch-size or --context-length.")
    val_loader = None
    if is_main and args.eval_every:
        try:
            val_set = GPTDatasetV1(text[split:], tokenizer, context_length, stride=context_length)
            val_loader = DataLoader(val_set, batch_size=micro_batch_size, shuffle=False, drop_last=False)
        except ValueError as error:  # too little held-out text for one sequence
            log(f"no validation loss: {error}")

    torch.manual_seed(args.seed)  # the same initial weights on every process
    try:
        model = GPTModel(config)
    except (KeyError, TypeError, ValueError) as error:
        raise UsageError(f"cannot build the model from the configuration {config}: {error}") from None
    model.to(device)
    optimizer = make_optimizer(model, lr=args.lr, weight_decay=args.weight_decay)
    start_step = 0
    if checkpoint is not None:
        try:
            model.load_state_dict(checkpoint["model_state_dict"])
            optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
        except (RuntimeError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UsageError(f"--resume: {args.out} does not fit its own configuration: {first}") from None
        start_step = checkpoint["step"]
        log(f"resuming from {args.out} at step {start_step}")
    if start_step >= args.steps:
        log(f"the checkpoint is at step {start_step}, nothing to do for --steps {args.steps}")
        return finish(world_size)
    end_step = min(args.steps, start_step + args.stop_after) if args.stop_after else args.steps
    torch.manual_seed(args.seed + 1000 * rank + start_step)  # each process draws its own dropout masks

    # The masks in the model's buffers never change: no need to broadcast them at every step.
    train_model = model
    if world_size > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=device_ids, broadcast_buffers=False)
    if args.compile:
        train_model = torch.compile(train_model)
    dtype = choose_dtype(device) if args.dtype == "auto" else getattr(torch, args.dtype)
    log(f"{world_size} process(es) on {device.type} in {str(dtype).removeprefix('torch.')}, "
        f"global batch {args.batch_size} = {world_size} x "
        f"{args.accumulation_steps} x {micro_batch_size} sequences of {context_length} tokens, "
        f"{steps_per_epoch} steps per epoch, {sum(p.numel() for p in model.parameters()):,} parameters")

    batches = step_batches(train_loader, sampler, steps_per_epoch, args.accumulation_steps, start_step)
    model.train()
    started = time.perf_counter()
    for step in range(start_step, end_step):
        lr = cosine_lr(step, args.lr, args.steps, args.warmup_steps,
                       args.lr if args.min_lr is None else args.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        micro_batches = next(batches)
        for i, (input_batch, target_batch) in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            # Between processes, gradients are averaged once per step, after the last micro-batch.
            sync = contextlib.nullcontext() if last or world_size == 1 else train_model.no_sync()
            with sync:
                with autocast(device, dtype):
                    loss = calc_loss_batch(input_batch, target_batch, train_model, device)
                (loss / len(micro_batches)).backward()  # gradients add up over the micro-batches
            loss_sum += loss.item()
        if args.max_grad_norm is not None and step >= args.warmup_steps:  # as train_model does
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        done = step + 1
        loss = mean_over_processes(loss_sum / len(micro_batches), world_size, device)
        if not math.isfinite(loss):  # every process sees the same mean, so all stop here
            raise TrainingFailed(
                f"the training loss became {loss} at step {done}; stopped without saving "
                f"(an earlier --save-every checkpoint in {args.out} is kept). Lower --lr, "
                "set --max-grad-norm or --warmup-steps, then train again.")
        if is_main and args.log_file:
            with open(args.log_file, "a") as f:
                f.write(json.dumps({"step": done, "loss": loss, "lr": lr}) + "\n")
        if done % args.log_every == 0 or done == end_step:
            tokens = (done - start_step) * args.batch_size * context_length
            log(f"step {done:6d}/{args.steps}: loss {loss:.4f}, lr {lr:.2e}, "
                f"{tokens / (time.perf_counter() - started):,.0f} tokens/s")
        if val_loader is not None and done % args.eval_every == 0:
            model.eval()
            log(f"step {done:6d}: validation loss "
                f"{calc_loss_loader(val_loader, model, device, args.eval_batches):.4f}")
            model.train()
        if is_main and (done == end_step or (args.save_every and done % args.save_every == 0)):
            save_checkpoint(args.out, model, config, optimizer, done)
            log(f"saved {args.out} at step {done}")
    return finish(world_size)


def finish(world_size):
    if world_size > 1:
        dist.barrier()  # the checkpoint is written before any process exits
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
