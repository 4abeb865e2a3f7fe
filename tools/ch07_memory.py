"""Peak memory of chapter 7's full-size fine-tuning (GPT-2 medium, 355M), and of ways to need less.

    python tools/ch07_memory.py               # every variant, each in a fresh process
    python tools/ch07_memory.py --steps 1     # quicker: one optimizer step each

Each variant builds chapter 7's model from a dictionary of NumPy arrays of the real shape
(random values: the memory is the same as with OpenAI's), fine-tunes it for --steps
optimizer steps of 8 examples on the instruction data, and prints the process's peak
resident memory:
- book: as the notebook does it, batch 8, the downloaded arrays (`params`) kept;
- del params: the same, with the arrays deleted once they are copied into the model;
- batch 2 x 4: also batches of 2 with the gradients of 4 added up before each step
  (`train_model(..., accumulation_steps=4)`, Appendix D): the same 8 examples per step.
Computing in bfloat16 (`train_model(..., dtype=torch.bfloat16)`) is left out: it saves only activation
memory, which is small here, and on CPUs without bfloat16 instructions it is very slow.
"""

import argparse
import gc
import json
import resource
import subprocess
import sys
from functools import partial


VARIANTS = {  # name: (batch size, accumulation steps, keep params)
    "book": (8, 1, True),
    "del params": (8, 1, False),
    "batch 2 x 4": (2, 4, False),
}


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def fine_tune(variant, steps):
    """Run in a fresh process: one variant; prints its peak memory as JSON."""
    import torch
    from torch.utils.data import DataLoader

    from scripts.bench import random_openai_params
    from gpt_download import download_data_file
    from previous_chapters import (GPTModel, InstructionDataset, custom_collate_fn, gpt2_config,
                                   gpt2_tokenizer, load_weights_into_gpt, split_instruction_data,
                                   train_model)

    batch_size, accumulation, keep_params = VARIANTS[variant]
    cfg = {**gpt2_config("gpt2-medium (355M)"), "drop_rate": 0.0}
    train_data, val_data, _ = split_instruction_data(
        json.loads(download_data_file("instruction-data.json").read_text(encoding="utf-8")))
    collate = partial(custom_collate_fn, device="cpu", allowed_max_length=cfg["context_length"])
    tokenizer = gpt2_tokenizer()
    torch.manual_seed(123)
    loader = DataLoader(InstructionDataset(train_data[:steps * 8], tokenizer), batch_size=batch_size,
                        collate_fn=collate, shuffle=True, drop_last=True)
    val_loader = DataLoader(InstructionDataset(val_data[:batch_size], tokenizer), batch_size=batch_size,
                            collate_fn=collate)

    params = random_openai_params(cfg)
    model = GPTModel(cfg)
    load_weights_into_gpt(model, params)
    if not keep_params:
        del params
        gc.collect()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.1)
    train_model(model, loader, val_loader, optimizer, "cpu", n_epochs=1, eval_freq=steps, eval_iter=1,
                accumulation_steps=accumulation)
    print(json.dumps({"peak_mib": peak_mib()}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per variant (default: 2)")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if args.variant:
        return fine_tune(args.variant, args.steps)
    print(f"{'variant':<22} {'peak memory':>12}")
    for variant in VARIANTS:
        print(f"[{variant}] running...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--variant", variant, "--steps", str(args.steps)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{variant:<22} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]
        print(f"{variant:<22} {peak / 1024:>8.1f} GiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
