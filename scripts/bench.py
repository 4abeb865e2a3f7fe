"""Benchmark the course's GPTModel against Hugging Face's GPT-2, with the same weights.

    python scripts/bench.py                      # CPU (or the GPU choose_device finds), fp32
    python scripts/bench.py --dtype bf16 --compile --new-tokens 200 --steps 5
    python scripts/bench.py --load-only          # only the two ways of loading (Appendix D.4)

It needs Hugging Face's transformers (in requirements-test.txt) and takes a few minutes
on a laptop CPU; --load-only needs neither and takes seconds.

Both models get one set of random GPT-2 124M weights in OpenAI's checkpoint layout: ours
through build_gpt_from_params, Hugging Face's GPT2LMHeadModel by copying the same arrays
(its Conv1D layers use OpenAI's layout). Our model keeps its output head separate from the
token embedding, so the Hugging Face model is built untied too: the same 163M parameters
and the same arithmetic. Dropout is off in both, so their losses can be checked equal.

"Ours" is GPTModel as the course builds it: fused attention (MultiHeadAttention's
default) and generate_cached (Appendix D's KV cache) for generation. Hugging Face's model
runs as shipped (SDPA attention, model.generate with its KV cache). Both train with make_optimizer (fused AdamW), and the
course's calc_loss_batch computes both losses.

One run measures, side by side:
- generation: tokens/s, batch 1, greedy, KV cache on for both; the generated ids must be
  identical (the script stops with an error if they are not);
- training: tokens/s of a full step (forward, loss, backward, AdamW) on batches of
  4 x 256 tokens, after warm-up steps;
- peak memory: the rise of the resident set size (RSS) during each phase, and CUDA's
  max_memory_allocated on a GPU;
- the share of the machine's matmul ceiling (a timed 2048^3 matmul) that each reaches,
  counting 2N FLOPs per generated token and 6N per trained token (N: weights used in
  matrix products, i.e. all but the embeddings; attention's own FLOPs are left out);
- weight loading: the peak extra RSS and the time to load the checkpoint into GPTModel,
  the book's way (GPTModel(cfg), then load_weights_into_gpt) and the lean way
  (build_gpt_from_params), each in a fresh subprocess.

--dtype bf16 generates with both models converted to bfloat16 and trains both under
bfloat16 autocast. --compile runs both models' training steps through torch.compile.
Timings on a shared machine are noisy: each figure is the best of several runs (runs of
the two models alternate), and the median is shown beside it.
"""

import argparse
import contextlib
import copy
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import psutil
import torch

from previous_chapters import (
    GPT_CONFIG_124M,
    GPTModel,
    build_gpt_from_params,
    calc_loss_batch,
    choose_device,
    generate_cached,
    load_weights_into_gpt,
    make_optimizer,
)

# GPT-2 124M as OpenAI trained it (with query/key/value biases); no dropout, see above.
BENCH_CONFIG = {**GPT_CONFIG_124M, "qkv_bias": True, "drop_rate": 0.0}
PROMPT = [6109, 3626, 6100, 345]  # "Every effort moves you" in GPT-2's tokenizer
MIB = 2**20


# ---------------------------------------------------------------------------- weights

def random_openai_params(cfg, seed=123):
    """Random GPT-2 weights in the layout of OpenAI's checkpoint (as gpt_download returns it)."""
    rng = np.random.default_rng(seed)
    d, v, n = cfg["emb_dim"], cfg["vocab_size"], cfg["context_length"]

    def normal(*shape, std=0.02):
        return (rng.standard_normal(shape, dtype=np.float32) * std).astype(np.float32, copy=False)

    def near_one(size):
        return 1.0 + normal(size, std=0.05)

    blocks = []
    for _ in range(cfg["n_layers"]):
        blocks.append({
            "attn": {"c_attn": {"w": normal(d, 3 * d), "b": normal(3 * d)},
                     "c_proj": {"w": normal(d, d), "b": normal(d)}},
            "mlp": {"c_fc": {"w": normal(d, 4 * d), "b": normal(4 * d)},
                    "c_proj": {"w": normal(4 * d, d), "b": normal(d)}},
            "ln_1": {"g": near_one(d), "b": normal(d)},
            "ln_2": {"g": near_one(d), "b": normal(d)},
        })
    return {"wte": normal(v, d), "wpe": normal(n, d, std=0.01), "blocks": blocks,
            "g": near_one(d), "b": normal(d)}


def hf_model_from_params(cfg, params):
    """Hugging Face's GPT2LMHeadModel (SDPA attention, untied head) holding the same weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=cfg["vocab_size"], n_positions=cfg["context_length"], n_embd=cfg["emb_dim"],
        n_layer=cfg["n_layers"], n_head=cfg["n_heads"], layer_norm_epsilon=1e-5,
        activation_function="gelu_new",  # GELU's tanh approximation, as in our GELU
        resid_pdrop=cfg["drop_rate"], embd_pdrop=cfg["drop_rate"], attn_pdrop=cfg["drop_rate"],
        tie_word_embeddings=False, attn_implementation="sdpa",
    )
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    state = {"transformer.wte.weight": params["wte"], "transformer.wpe.weight": params["wpe"],
             "transformer.ln_f.weight": params["g"], "transformer.ln_f.bias": params["b"],
             "lm_head.weight": params["wte"]}
    for i, block in enumerate(params["blocks"]):
        prefix = f"transformer.h.{i}."
        for group, layers in block.items():  # attn/mlp hold layers with w, b; ln_1/ln_2 hold g, b
            if group.startswith("ln_"):
                state[prefix + group + ".weight"] = layers["g"]
                state[prefix + group + ".bias"] = layers["b"]
            else:
                for name, wb in layers.items():
                    state[f"{prefix}{group}.{name}.weight"] = wb["w"]
                    state[f"{prefix}{group}.{name}.bias"] = wb["b"]
    state = {key: torch.tensor(value) for key, value in state.items()}  # own copies, like ours
    model.load_state_dict(state, strict=True, assign=True)
    model.generation_config.eos_token_id = None  # never stop early: always generate the full length
    model.generation_config.pad_token_id = 0
    return model


def matmul_params(model):
    """Weights used in matrix products: all parameters except the embedding tables."""
    embeddings = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    skip = {id(p) for m in embeddings for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


# ---------------------------------------------------------------------------- measuring

def rss():
    return psutil.Process().memory_info().rss


def release_free_memory():
    """Hand memory that is free but still held by the C allocator back to the OS (glibc only).

    Otherwise the second model's phase would reuse the first one's freed memory and look
    smaller than it is.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def peak_memory(device, result):
    """Records in `result` the peak RSS above the starting RSS (and CUDA's peak allocation)."""
    gc.collect()
    release_free_memory()
    start = rss()
    can_reset = reset_rss_peak()
    sampler = None if can_reset else RssSampler()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        cuda_start = torch.cuda.memory_allocated(device)
    try:
        yield
    finally:
        peak = read_rss_peak() if can_reset else sampler.stop()
        result["peak_rss_mib"] = (peak - start) / MIB
        if device.type == "cuda":
            result["cuda_peak_mib"] = (torch.cuda.max_memory_allocated(device) - cuda_start) / MIB


def reset_rss_peak():
    """Reset Linux's record of the peak RSS (VmHWM) of this process; False where that fails."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return read_rss_peak() is not None
    except OSError:
        return False


def read_rss_peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


class RssSampler:
    """Fallback peak-RSS meter (non-Linux): psutil, polled in a thread every millisecond."""

    def __init__(self):
        import threading
        self.peak, self.done = rss(), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.done.wait(0.001):
            self.peak = max(self.peak, rss())

    def stop(self):
        self.done.set()
        self.thread.join()
        return max(self.peak, rss())


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def matmul_ceiling(device, dtype, repeats=10):
    """Best FLOP/s of a 2048 x 2048 by 2048 x 2048 matrix product."""
    n = 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / min(times)


# ---------------------------------------------------------------------------- phases

def generate_hf(model, idx, new_tokens):
    with torch.inference_mode():
        return model.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=new_tokens,
                              do_sample=False, use_cache=True)


def bench_generation(models, args, device):
    """Alternate ours and HF, `args.rounds` times each; check the generated ids agree."""
    idx = torch.tensor([PROMPT], device=device)
    generators = {
        "ours": lambda m, n: generate_cached(m, idx, n, context_size=BENCH_CONFIG["context_length"]),
        "HF": lambda m, n: generate_hf(m, idx, n),
    }
    results = {name: {"times": []} for name in models}
    outputs = {}
    for name, model in models.items():  # warm-up: first calls allocate and pick kernels
        generators[name](model, 8)
    for _ in range(args.rounds):
        for name, model in models.items():
            with peak_memory(device, results[name]):
                sync(device)
                t0 = time.perf_counter()
                outputs[name] = generators[name](model, args.new_tokens)
                sync(device)
            results[name]["times"].append(time.perf_counter() - t0)

    ours, hf = outputs["ours"][0].tolist(), outputs["HF"][0].tolist()
    if ours != hf:
        first = next(i for i, (a, b) in enumerate(zip(ours, hf)) if a != b)
        raise SystemExit(f"FAIL: the generated ids differ from position {first} on:\n"
                         f"  ours {ours[first:first + 10]}\n  HF   {hf[first:first + 10]}")
    for name in models:
        times = results[name]["times"]
        results[name]["tok_s"] = args.new_tokens / min(times)
        results[name]["tok_s_median"] = args.new_tokens / statistics.median(times)
    return results


def train_steps(name, model, args, device, batches):
    """Warm-up steps, then timed steps; returns per-step times and the first loss."""
    model.train()
    optimizer = make_optimizer(model, lr=1e-4, weight_decay=0.1)
    if name == "ours":
        forward = model
    else:  # HF returns an output object; no key/value cache is needed for training
        def forward(x):
            return model(input_ids=x, use_cache=False).logits
    if args.compile:
        forward = torch.compile(forward)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == "bf16"
                else contextlib.nullcontext())
    times, losses = [], []
    for step, (x, y) in enumerate(batches):
        sync(device)
        t0 = time.perf_counter()
        with autocast:
            loss = calc_loss_batch(x, y, forward, device)  # the course's loss, for both models
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())  # .item() waits for the device
        if step >= args.warmup_steps:
            times.append(time.perf_counter() - t0)
    del optimizer
    return times, losses


def bench_training(models, args, device):
    generator = torch.Generator().manual_seed(123)
    batch_size, seq_len = 4, 256
    batches = []
    for _ in range(args.warmup_steps + args.steps):
        ids = torch.randint(0, BENCH_CONFIG["vocab_size"], (batch_size, seq_len + 1), generator=generator)
        batches.append((ids[:, :-1].to(device), ids[:, 1:].to(device)))
    results = {}
    for name, model in models.items():  # one model after the other, so peak memory is its own
        results[name] = {}
        with peak_memory(device, results[name]):
            times, losses = train_steps(name, model, args, device, batches)
        model.zero_grad(set_to_none=True)
        gc.collect()
        results[name].update(times=times, losses=losses,
                             tok_s=batch_size * seq_len / min(times),
                             tok_s_median=batch_size * seq_len / statistics.median(times))
    first_ours, first_hf = results["ours"]["losses"][0], results["HF"]["losses"][0]
    tolerance = 1e-3 if args.dtype == "fp32" else 5e-2
    if abs(first_ours - first_hf) > tolerance:
        raise SystemExit(f"FAIL: the first training losses differ: ours {first_ours:.6f}, HF {first_hf:.6f}")
    return results


def load_probe(kind):
    """Run in a subprocess: peak extra RSS and time to load the 124M checkpoint into GPTModel."""
    params = random_openai_params(BENCH_CONFIG)
    gc.collect()
    start = rss()
    can_reset = reset_rss_peak()
    sampler = None if can_reset else RssSampler()

    def load():
        if kind == "book":
            model = GPTModel(BENCH_CONFIG)
            load_weights_into_gpt(model, params)
            return model
        return build_gpt_from_params(BENCH_CONFIG, params)

    t0 = time.perf_counter()
    model = load()
    seconds = time.perf_counter() - t0
    peak = read_rss_peak() if can_reset else sampler.stop()
    model_mib = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / MIB
    del model
    t0 = time.perf_counter()
    load()  # again: without one-time costs (the meta device's first use imports its kernels)
    seconds_again = time.perf_counter() - t0
    print(json.dumps({"peak_extra_mib": (peak - start) / MIB, "model_mib": model_mib, "seconds": seconds,
                      "seconds_again": seconds_again}))


def measure_loading(threads):
    results = {}
    for kind in ("book", "lean"):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([sys.executable, __file__, "--load-probe", kind], env=env,
                             capture_output=True, text=True, check=True).stdout
        results[kind] = json.loads(out.strip().splitlines()[-1])
    return results


# ---------------------------------------------------------------------------- report

def report(args, device, ceiling, n_matmul, gen, train, load):
    def row(label, ours, hf, fmt="{:.1f}", ratio=True):
        cells = f"{label:34s} {fmt.format(ours):>10s} {fmt.format(hf):>10s}"
        if ratio:
            cells += f" {ours / hf:>9.2f}x" if hf > 0 else f" {'-':>10s}"
        print(cells)

    print(f"\n{'':34s} {'ours':>10s} {'HF':>10s} {'ours/HF':>10s}")
    row("generation tokens/s (best)", gen["ours"]["tok_s"], gen["HF"]["tok_s"])
    row("generation tokens/s (median)", gen["ours"]["tok_s_median"], gen["HF"]["tok_s_median"])
    row("training tokens/s (best)", train["ours"]["tok_s"], train["HF"]["tok_s"])
    row("training tokens/s (median)", train["ours"]["tok_s_median"], train["HF"]["tok_s_median"])
    for phase, res in (("generation", gen), ("training", train)):
        row(f"{phase} peak RSS increase (MiB)", res["ours"]["peak_rss_mib"], res["HF"]["peak_rss_mib"],
            "{:.0f}")
        if device.type == "cuda":
            row(f"{phase} CUDA peak allocated (MiB)", res["ours"]["cuda_peak_mib"],
                res["HF"]["cuda_peak_mib"], "{:.0f}")
    gen_flops = 2 * n_matmul
    train_flops = 6 * n_matmul
    row("generation: share of matmul ceiling", 100 * gen_flops * gen["ours"]["tok_s"] / ceiling,
        100 * gen_flops * gen["HF"]["tok_s"] / ceiling, "{:.1f}%", ratio=False)
    row("training: share of matmul ceiling", 100 * train_flops * train["ours"]["tok_s"] / ceiling,
        100 * train_flops * train["HF"]["tok_s"] / ceiling, "{:.1f}%", ratio=False)
    print(f"first training loss: ours {train['ours']['losses'][0]:.5f}, HF {train['HF']['losses'][0]:.5f}")

    report_loading(load)

    goals = (("generation", gen, 1.3), ("training", train, 1.2))
    print()
    for phase, res, goal in goals:
        ratio = res["ours"]["tok_s"] / res["HF"]["tok_s"]
        verdict = "met" if ratio >= goal else f"MISSED by {100 * (goal - ratio) / goal:.0f}%"
        print(f"goal {phase} >= {goal}x HF: {ratio:.2f}x, {verdict}")


def report_loading(load):
    print(f"\nLoading the {load['book']['model_mib']:.0f} MiB checkpoint into GPTModel (fresh subprocesses):")
    for kind, label in (("book", "GPTModel(cfg) + load_weights_into_gpt"),
                        ("lean", "build_gpt_from_params (meta device)")):
        print(f"  {label:40s} peak extra RSS {load[kind]['peak_extra_mib']:5.0f} MiB, "
              f"{load[kind]['seconds']:5.2f} s (a second load: {load[kind]['seconds_again']:5.2f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: choose_device())")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: generation with bf16 weights, training under bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models for training")
    parser.add_argument("--new-tokens", type=int, default=200, help="tokens to generate per run")
    parser.add_argument("--rounds", type=int, default=3, help="timed generation runs per model")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per model")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed training steps first")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    parser.add_argument("--load-only", action="store_true",
                        help="only compare the two ways of loading the checkpoint (no transformers needed)")
    parser.add_argument("--load-probe", choices=["book", "lean"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.load_probe:
        return load_probe(args.load_probe)
    if args.load_only:
        print(f"threads {torch.get_num_threads()}, torch {torch.__version__}")
        return report_loading(measure_loading(torch.get_num_threads()))

    device = choose_device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    import transformers
    print(f"device {device}, dtype {args.dtype}, compile {args.compile}, "
          f"threads {torch.get_num_threads()}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # The ceiling is measured at the start, between the phases and at the end; the best counts
    # (on a shared machine a single measurement may catch a busy moment).
    print("measuring the matmul ceiling ...", flush=True)
    ceilings = [matmul_ceiling(device, dtype)]
    print("loading the checkpoint both ways, in fresh subprocesses ...", flush=True)
    load = measure_loading(torch.get_num_threads())
    print("building both models from the same random weights ...", flush=True)

    params = random_openai_params(BENCH_CONFIG)
    ours = build_gpt_from_params(BENCH_CONFIG, params, device=device)
    models = {"ours": ours,
              "HF": hf_model_from_params(BENCH_CONFIG, params).to(device)}
    del params
    n_matmul = matmul_params(models["ours"])
    assert n_matmul == matmul_params(models["HF"]), "the two models should have the same weights"
    print(f"parameters used in matmuls N = {n_matmul:,}")

    for model in models.values():
        model.eval()
    gen_models = models if dtype == torch.float32 else {
        name: copy.deepcopy(model).to(dtype) for name, model in models.items()}
    print(f"generating {args.new_tokens} tokens, {args.rounds} runs each ...", flush=True)
    gen = bench_generation(gen_models, args, device)
    del gen_models
    ceilings.append(matmul_ceiling(device, dtype))
    print(f"the generated ids are identical ({args.new_tokens} new tokens)")
    print(f"training: {args.warmup_steps} warm-up + {args.steps} timed steps of 4 x 256 tokens each ...",
          flush=True)
    train = bench_training(models, args, device)
    ceilings.append(matmul_ceiling(device, dtype))
    ceiling = max(ceilings)
    print(f"matmul ceiling (2048^3, {args.dtype}): {ceiling / 1e9:.1f} GFLOP/s "
          f"(best of {', '.join(f'{c / 1e9:.0f}' for c in ceilings)})")
    report(args, device, ceiling, n_matmul, gen, train, load)
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
