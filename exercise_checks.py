"""Checks for the exercise notebooks (exercises/chNN_exercises.ipynb).

Each exercise has a function check_chNN_exM(...) that a notebook's check cell calls with
the learner's answer (a function, a class, a module or a dict). The check runs the
answer on inputs of its own, compares the result with a reference it computes on the
spot, and prints a short verdict: a pass, or a hint about what to look at. It never
shows the expected answer.

A check has one or more parts (sub-checks), each worth one point; a part that fails
gives its hint and the others still run. score(exercise_id, *answer) returns the
Scorecard of every part; judge(exercise_id, *answer) returns (passed, first hint).

These checks are for learners: they help, they do not grade. The grader
(tools/grade.py) runs the learner's answers in a fresh interpreter with its own copy of
this module and adds the private parts of tools/private_checks.py, which are never
handed out.

Hand this file out beside previous_chapters.py and the exercise notebook.
"""

import csv
import math
import os
import random
import sys
import tempfile
import traceback
from pathlib import Path

import torch
import torch.nn as nn

import previous_chapters as pc

# exercise id -> Exercise; filled by @exercise below, in order.
EXERCISES = {}


class NotYet(Exception):
    """Raised by a judge: the answer is not right yet; the message is the hint."""


class Exercise:
    def __init__(self, exercise_id, title, parts, judge_function):
        self.exercise_id, self.title, self.parts, self.judge_function = exercise_id, title, parts, judge_function


def exercise(exercise_id, title, parts=None):
    """Register a judge and create check_<exercise_id>, the function the notebooks call.

    parts: the names of the judge's sub-checks, each run in a `with part(name):` block;
    without them the whole judge is one part, named after the title."""

    def register(judge_function):
        EXERCISES[exercise_id] = Exercise(exercise_id, title, list(parts or [title]), judge_function)

        def check(*answer):
            return show_verdict(exercise_id, *answer)

        check.__name__ = f"check_{exercise_id}"
        check.__doc__ = f"Check your answer to {label(exercise_id)}: {title}."
        globals()[check.__name__] = check
        return judge_function

    return register


def label(exercise_id):
    """'ch03_ex2' -> 'Exercise 3.2'."""
    chapter, number = exercise_id.split("_ex")
    return f"Exercise {int(chapter[2:])}.{int(number)}"


def chapter_exercises(chapter):
    """The exercise ids of one chapter ('ch03'), in order."""
    return [exercise_id for exercise_id in EXERCISES if exercise_id.startswith(chapter + "_")]


def first_line(error):
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def is_notebook_cell(filename):
    """Whether code with this file name was a notebook cell (Jupyter's, IPython's or the grader's)."""
    return filename.startswith(("<cell ", "<ipython-input-")) or Path(filename).parent.name.startswith("ipykernel_")


def learner_line(error):
    """'<cell 5>, line 3: return x[0]': the innermost line of a notebook cell in error's traceback."""
    cell_frames = [frame for frame in traceback.extract_tb(error.__traceback__) if is_notebook_cell(frame.filename)]
    if not cell_frames:
        return None
    frame = cell_frames[-1]
    return f"{frame.filename}, line {frame.lineno}: {(frame.line or '').strip()}"


class Scorecard:
    """The outcome of every part of one exercise's check: {part: None (not run) or (passed, hint, line)}."""

    def __init__(self, exercise_id, parts):
        self.exercise_id = exercise_id
        self.outcomes = {name: None for name in parts}
        self.praise = None

    def record(self, name, passed, hint="", line=None):
        self.outcomes[name] = (passed, hint, line)

    def fail_the_rest(self, hint, line=None):
        for name, outcome in self.outcomes.items():
            if outcome is None:
                self.record(name, False, hint, line)

    @property
    def points(self):
        return sum(1 for outcome in self.outcomes.values() if outcome and outcome[0])

    @property
    def max_points(self):
        return len(self.outcomes)

    @property
    def passed(self):
        return self.points == self.max_points

    def first_hint(self):
        return next((outcome[1] for outcome in self.outcomes.values() if not outcome[0]), "")

    def as_dict(self):
        return {"exercise": self.exercise_id, "points": self.points, "max_points": self.max_points,
                "parts": [{"part": name, "passed": passed, "hint": hint, "line": line}
                          for name, (passed, hint, line) in self.outcomes.items()]}


_scorecards = []  # the scorecard of the check that is running (a stack, for checks inside checks)


def crash_hint(error):
    return f"your code raised {first_line(error)} while the check ran it; try it on a small input yourself."


class part:
    """`with part(name):` runs one sub-check: a NotYet or an error raised in it fails that part only."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        card = _scorecards[-1]
        if self.name not in card.outcomes:
            raise RuntimeError(f"the check has no part {self.name!r}")  # a bug in the check
        if kind is None:
            card.record(self.name, True)
            return False
        if issubclass(kind, NotYet):
            card.record(self.name, False, str(error))
            return True
        if issubclass(kind, Exception):
            card.record(self.name, False, crash_hint(error), learner_line(error))
            return True
        return False


def score(exercise_id, *answer, extra_parts=()):
    """Run the check of one exercise on an answer; returns its Scorecard.

    extra_parts: [(name, function)], more parts to run after the judge's own, each
    called with the answer (the grader's private parts)."""
    entry = EXERCISES[exercise_id]
    card = Scorecard(exercise_id, entry.parts + [name for name, _ in extra_parts])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the checks' models are tiny: one thread is fastest
    _scorecards.append(card)
    try:
        with torch.random.fork_rng(devices=[]):  # leave the learner's random state alone
            run_judge(card, entry, answer)
            for name, function in extra_parts:
                with part(name):
                    function(*answer)
    finally:
        _scorecards.pop()
        torch.set_num_threads(threads)
    return card


def run_judge(card, entry, answer):
    """Run the judge's parts; an error outside them fails every part it did not reach."""
    single = entry.parts == [entry.title]
    try:
        if single:
            with part(entry.title):
                card.praise = entry.judge_function(*answer)
        else:
            card.praise = entry.judge_function(*answer)
    except NotYet as hint:
        card.fail_the_rest(str(hint))
    except Exception as error:  # raised by the learner's code while the check ran it
        card.fail_the_rest(crash_hint(error), learner_line(error))
    if any(card.outcomes[name] is None for name in entry.parts):
        raise RuntimeError(f"the check of {entry.exercise_id} skipped a part")  # a bug in the check


def judge(exercise_id, *answer):
    """(passed, message): the first hint, or praise, for an answer."""
    card = score(exercise_id, *answer)
    return card.passed, card.praise or "well done." if card.passed else card.first_hint()


def show_verdict(exercise_id, *answer):
    card = score(exercise_id, *answer)
    if card.passed:
        print(f"✅ {label(exercise_id)} passed: {card.praise or 'well done.'}")
        return
    counted = f" ({card.points} of {card.max_points} parts pass)" if card.max_points > 1 else ""
    print(f"❌ {label(exercise_id)}, not yet{counted}: {card.first_hint()}")
    line = next((outcome[2] for outcome in card.outcomes.values() if outcome[2]), None)
    if line:
        print(f"   the error came from {line}")


class watch_calls:
    """`with watch_calls(f, g) as calls:` records every call of f and g made meanwhile, however
    the code reached them: calls[f] lists the arguments of each call of a Python function (a
    dict) and counts a builtin's calls (an empty dict each). The checks use it to notice a
    shortcut that a task rules out."""

    def __init__(self, *functions):
        self.functions = functions
        self.codes = {getattr(f, "__code__", None): f for f in functions if hasattr(f, "__code__")}
        self.calls = {f: [] for f in functions}

    def profile(self, frame, event, arg):
        if event == "call" and frame.f_code in self.codes:
            self.calls[self.codes[frame.f_code]].append(dict(frame.f_locals))
        elif event == "c_call":
            for function in self.functions:
                if arg is function:
                    self.calls[function].append({})

    def __enter__(self):
        self.previous = sys.getprofile()
        sys.setprofile(self.profile)
        return self.calls

    def __exit__(self, *_):
        sys.setprofile(self.previous)
        return False


# ---------------------------------------------------------------------------
# Helpers for the judges
# ---------------------------------------------------------------------------

def need(condition, hint):
    if not condition:
        raise NotYet(hint)


def need_defined(obj, name):
    need(obj is not None and obj is not Ellipsis, f"`{name}` is not defined yet: write it in the cell above.")


def need_callable(obj, name):
    need(obj is not None and obj is not Ellipsis, f"`{name}` is not defined yet: write it in the cell above.")
    need(callable(obj), f"`{name}` should be a function (or class) you can call.")


def count_of(module):
    """Every parameter element of a module."""
    return sum(p.numel() for p in module.parameters())


def close(a, b, tol=1e-5):
    return torch.is_tensor(a) and a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=tol, rtol=tol)


def tiny_config(**changes):
    config = {"vocab_size": 60, "context_length": 16, "emb_dim": 16, "n_heads": 2,
              "n_layers": 2, "drop_rate": 0.0, "qkv_bias": False}
    config.update(changes)
    return config


def tiny_model(seed, **changes):
    torch.manual_seed(seed)
    return pc.GPTModel(tiny_config(**changes))


def gpt2_tokenizer():
    import tiktoken

    return tiktoken.get_encoding("gpt2")


# A few sentences of our own for the text exercises.
SAMPLE_TEXT = (
    "The lighthouse keeper counted the ships every evening. Some nights there were none, "
    "and he counted the waves instead. In spring a small boat with a red sail came by twice, "
    "once going north and once, much later, going south again. He wrote both in his book. "
    "Nobody ever asked to read the book, but he kept it tidy all the same, because a record "
    "that nobody reads today may be exactly what somebody needs tomorrow."
)


# ---------------------------------------------------------------------------
# Chapter 2
# ---------------------------------------------------------------------------

@exercise("ch02_ex1", "byte-pair encoding of unknown words")
def _ch02_ex1(bpe_pieces):
    need_callable(bpe_pieces, "bpe_pieces")
    tokenizer = gpt2_tokenizer()
    for text in ["Qwompelstiltz", "Akwirw ier", " flurbish-snorkeling", "Zyx9 quoopa!"]:
        pieces = bpe_pieces(text)
        need(isinstance(pieces, (list, tuple)) and all(isinstance(p, str) for p in pieces),
             "`bpe_pieces` should return a list of strings, one per token.")
        need("".join(pieces) == text,
             "joined together, the pieces should give back the original text exactly, spaces included.")
        expected = [tokenizer.decode([token_id]) for token_id in tokenizer.encode(text)]
        need(len(pieces) == len(expected) and list(pieces) == expected,
             "your pieces join up to the text, but they are not the ones GPT-2's tokenizer uses: "
             "encode the text with tiktoken's 'gpt2' encoding and turn each token ID back into text on its own.")
    return "unknown words are not a problem for BPE: they fall apart into known subwords and single characters."


@exercise("ch02_ex2", "data loaders with other lengths and strides")
def _ch02_ex2(make_loader):
    need_callable(make_loader, "make_loader")
    text = SAMPLE_TEXT * 2
    for max_length, stride, batch_size in [(2, 2, 3), (8, 2, 4), (4, 1, 5), (5, 7, 2)]:
        loader = make_loader(text, max_length=max_length, stride=stride, batch_size=batch_size)
        batches = list(loader)
        reference = list(pc.create_dataloader_v1(text, batch_size=batch_size, max_length=max_length,
                                                 stride=stride, shuffle=False, drop_last=False))
        need(len(batches) > 0 and all(len(b) == 2 for b in batches),
             "the loader should yield (inputs, targets) pairs.")
        inputs, targets = batches[0]
        need(torch.is_tensor(inputs) and inputs.dim() == 2 and inputs.shape[1] == max_length,
             "each row of a batch of inputs should hold max_length token IDs.")
        need(inputs.shape[0] == batch_size, "the first batch should hold batch_size rows.")
        need(targets.shape == inputs.shape and torch.equal(targets[:, :-1], inputs[:, 1:]),
             "targets should be the inputs shifted one token to the right.")
        got = torch.cat([b[0] for b in batches])
        want = torch.cat([b[0] for b in reference])
        if got.shape[0] == want.shape[0] - len(reference[-1][0]) and len(reference[-1][0]) < batch_size:
            raise NotYet("the last, smaller batch is missing: keep incomplete batches (drop_last).")
        need(got.shape[0] == want.shape[0],
             "the number of windows is off: a new window should start every `stride` tokens.")
        if not torch.equal(got, want):
            same_rows = sorted(map(tuple, got.tolist())) == sorted(map(tuple, want.tolist()))
            need(not same_rows, "the right windows, but in another order: switch shuffling off.")
            raise NotYet("the windows do not start where they should: use GPT-2's BPE tokenizer and "
                         "start a new window every `stride` tokens from the beginning of the text.")
        need(torch.equal(torch.cat([b[1] for b in batches]), torch.cat([b[1] for b in reference])),
             "the inputs are right, but some targets are not: each target window is its input window "
             "moved one token on, so its last target is the token that follows the window in the text.")
    return "your loader cuts windows of any length and stride."


class _CountingTokenizer:
    """A stand-in tokenizer whose token IDs are the token positions 0, 1, 2, ..."""

    def __init__(self, n):
        self.n = n

    def encode(self, text, allowed_special=None):
        return list(range(self.n))


@exercise("ch02_ex3", "how much consecutive windows overlap")
def _ch02_ex3(overlap):
    need_callable(overlap, "overlap")
    unseen = random.Random()  # a few sizes that differ from one run to the next, beside the fixed ones
    lengths = [unseen.randint(2, 300) for _ in range(4)]
    more = [(length, unseen.randint(1, length - 1)) for length in lengths]  # windows that overlap
    for max_length, stride in [(4, 1), (4, 4), (8, 2), (3, 5), (256, 128), (6, 4)] + more:
        dataset = pc.GPTDatasetV1("", _CountingTokenizer(3 * max_length + 3 * stride), max_length, stride)
        first, second = dataset[0][0].tolist(), dataset[1][0].tolist()
        expected = len(set(first) & set(second))
        got = overlap(max_length, stride)
        need(isinstance(got, int) or (torch.is_tensor(got) and got.numel() == 1),
             "`overlap` should return a whole number of tokens.")
        if int(got) != expected:
            hint = ("windows that are further apart than they are long share nothing."
                    if stride >= max_length else
                    "write out the token positions of the first two windows for max_length=4, "
                    "stride=1 and count the positions that appear in both.")
            raise NotYet(f"wrong count for some max_length and stride: {hint}")
    return "with stride = max_length nothing overlaps, which avoids seeing the same tokens twice per epoch."


# ---------------------------------------------------------------------------
# Chapter 3
# ---------------------------------------------------------------------------

class SelfAttention_v1(nn.Module):
    """Self-attention with the weight matrices as plain parameters: x @ W."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):  # x: (num_tokens, d_in)
        queries, keys, values = x @ self.W_query, x @ self.W_key, x @ self.W_value
        weights = torch.softmax(queries @ keys.T / keys.shape[-1] ** 0.5, dim=-1)  # (num_tokens, num_tokens)
        return weights @ values  # (num_tokens, d_out)


class SelfAttention_v2(nn.Module):
    """The same computation with nn.Linear layers (no bias)."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=False)
        self.W_key = nn.Linear(d_in, d_out, bias=False)
        self.W_value = nn.Linear(d_in, d_out, bias=False)

    def forward(self, x):  # x: (num_tokens, d_in)
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
        weights = torch.softmax(queries @ keys.T / keys.shape[-1] ** 0.5, dim=-1)  # (num_tokens, num_tokens)
        return weights @ values  # (num_tokens, d_out)


@exercise("ch03_ex1", "two self-attention classes, one result")
def _ch03_ex1(copy_weights):
    need_callable(copy_weights, "copy_weights")
    for seed, (d_in, d_out) in enumerate([(3, 2), (5, 4), (6, 6)]):
        torch.manual_seed(seed)
        sa_v1, sa_v2 = SelfAttention_v1(d_in, d_out), SelfAttention_v2(d_in, d_out)
        v2_before = {k: v.clone() for k, v in sa_v2.state_dict().items()}
        v1_before = sa_v1.W_query.detach().clone()
        x = torch.randn(7, d_in)
        copy_weights(sa_v2, sa_v1)
        need("forward" not in vars(sa_v1) and type(sa_v1) is SelfAttention_v1,
             "sa_v1 should still compute with its own forward method: copy weights, not methods or classes.")
        need(all(torch.equal(v, sa_v2.state_dict()[k]) for k, v in v2_before.items()),
             "sa_v2 changed: copy from sa_v2 into sa_v1, not the other way round.")
        need(not torch.equal(sa_v1.W_query.detach(), v1_before),
             "sa_v1's weights did not change: give sa_v1.W_query, W_key and W_value new values.")
        need(tuple(sa_v1.W_query.shape) == (d_in, d_out),
             "sa_v1 multiplies x @ W, so its matrices must stay (d_in, d_out); nn.Linear stores its "
             "weight the other way round, as (d_out, d_in).")
        with torch.no_grad():
            need(close(SelfAttention_v1.forward(sa_v1, x), sa_v2(x)),
                 "the two modules still give different outputs: remember that nn.Linear computes "
                 "x @ weight.T, and copy all three matrices (query, key and value).")
    return "the two classes compute the same thing; only the way the weights are stored differs."


@exercise("ch03_ex2", "attention with a 2-dimensional output")
def _ch03_ex2(mha_2d):
    need_defined(mha_2d, "mha_2d")
    need(isinstance(mha_2d, pc.MultiHeadAttentionWrapper),
         "`mha_2d` should be a MultiHeadAttentionWrapper (from previous_chapters).")
    need(len(mha_2d.heads) == 2, "the exercise asks for two heads.")
    need(all(head.dropout.p == 0 for head in mha_2d.heads),
         "the exercise asks for no dropout: with dropout the output changes from one call to the next.")
    torch.manual_seed(5)
    x = torch.randn(2, 6, 3)
    mha_2d.eval()
    try:
        with torch.no_grad():
            out = mha_2d(x)
    except RuntimeError:
        raise NotYet("it fails on inputs of shape (batch, 6 tokens, 3): the inputs have d_in=3 "
                     "and the module must accept contexts of 6 tokens.") from None
    need(out.shape[:2] == (2, 6), "the output should keep the batch and token dimensions.")
    need(out.shape[-1] == 2,
         f"each token's output has {out.shape[-1]} numbers instead of 2; the heads' outputs are "
         "concatenated, so think about how many each head may contribute.")
    with torch.no_grad():
        expected = torch.cat([head(x) for head in mha_2d.heads], dim=-1)
    need(close(out, expected), "the output is not the concatenation of the heads' outputs.")
    return "two heads with one output number each give a 2-dimensional context vector."


@exercise("ch03_ex3", "a GPT-2-sized multi-head attention module and its parameters")
def _ch03_ex3(mha_gpt2, count_parameters):
    need_defined(mha_gpt2, "mha_gpt2")
    need(isinstance(mha_gpt2, pc.MultiHeadAttention),
         "`mha_gpt2` should be a MultiHeadAttention (from previous_chapters).")
    need(mha_gpt2.W_query.in_features == 768 and mha_gpt2.d_out == 768,
         "GPT-2 small embeds each token in 768 numbers, in and out.")
    need(mha_gpt2.num_heads == 12, "GPT-2 small has 12 attention heads.")
    need(mha_gpt2.mask.shape[0] == 1024, "GPT-2 works on contexts of up to 1,024 tokens.")
    need_callable(count_parameters, "count_parameters")
    frozen = nn.Linear(4, 3)
    frozen.weight.requires_grad_(False)
    for module in [nn.Linear(3, 5), nn.Linear(7, 2, bias=False), frozen,
                   pc.MultiHeadAttention(6, 4, 5, 0.0, 2, qkv_bias=True), tiny_model(0), mha_gpt2]:
        expected = sum(p.numel() for p in module.parameters())
        got = count_parameters(module)
        need(isinstance(got, int) or (torch.is_tensor(got) and got.numel() == 1),
             "`count_parameters` should return one whole number.")
        need(int(got) == expected,
             "`count_parameters` gives a wrong count on some modules: add up the number of elements "
             "(numel) of every parameter, trainable or frozen, weights and biases.")
    return "that is the size of one attention layer of GPT-2 small; the model has twelve."


# ---------------------------------------------------------------------------
# Chapter 4
# ---------------------------------------------------------------------------

@exercise("ch04_ex1", "parameters in the feed-forward and attention parts of a block")
def _ch04_ex1(block_param_counts):
    need_callable(block_param_counts, "block_param_counts")
    for changes in [{}, {"emb_dim": 24, "n_heads": 3}, {"emb_dim": 32, "qkv_bias": True}, {"emb_dim": 8}]:
        config = tiny_config(**changes)
        block = pc.TransformerBlock(config)
        counts = block_param_counts(config)
        need(isinstance(counts, dict) and {"feed_forward", "attention"} <= set(counts),
             "return a dict with the keys 'feed_forward' and 'attention'.")
        need(int(counts["feed_forward"]) == sum(p.numel() for p in block.ff.parameters()),
             "the feed-forward count is off for some configuration: count every weight and bias "
             "of both linear layers (the hidden layer is 4 times emb_dim wide).")
        need(int(counts["attention"]) == sum(p.numel() for p in block.att.parameters()),
             "the attention count is off for some configuration: query, key and value projections, "
             "the output projection, and their biases where the configuration has them.")
    return "the feed-forward part holds about twice as many parameters as the attention part."


@exercise("ch04_ex2", "GPT-2 medium, large and XL")
def _ch04_ex2(gpt2_configs, count_gpt_params):
    need_defined(gpt2_configs, "gpt2_configs")
    need(isinstance(gpt2_configs, dict), "`gpt2_configs` should be a dict of configurations.")
    for name, size_name in [("gpt2-medium", "gpt2-medium (355M)"), ("gpt2-large", "gpt2-large (774M)"),
                            ("gpt2-xl", "gpt2-xl (1558M)")]:
        need(name in gpt2_configs, f"`gpt2_configs` has no entry {name!r}.")
        config = gpt2_configs[name]
        need(isinstance(config, dict) and set(config) == set(pc.GPT_CONFIG_124M),
             f"the configuration {name!r} should have the same keys as GPT_CONFIG_124M.")
        for key, value in {**pc.GPT_CONFIG_124M, **pc.MODEL_CONFIGS[size_name]}.items():
            need(config[key] == value, f"{name!r} has the wrong {key!r}.")
    need_callable(count_gpt_params, "count_gpt_params")
    for seed, changes in enumerate([{}, {"n_layers": 3, "emb_dim": 24, "n_heads": 4},
                                    {"vocab_size": 97, "context_length": 9, "qkv_bias": True}]):
        expected = sum(p.numel() for p in tiny_model(seed, **changes).parameters())
        got = count_gpt_params(tiny_config(**changes))
        need(int(got) == expected,
             "`count_gpt_params` is off for some small configurations: count the embeddings, "
             "every block, the final norm and the output head (it has no bias).")
    return "the count grows with the number of layers and, roughly, with the square of emb_dim."


@exercise("ch04_ex3", "separate dropout rates")
def _ch04_ex3(model_class):
    need_callable(model_class, "GPTModelDropouts")
    rates = {"drop_rate_emb": 0.15, "drop_rate_attn": 0.25, "drop_rate_shortcut": 0.35}
    config = tiny_config(**rates)
    del config["drop_rate"]
    torch.manual_seed(3)
    try:
        model = model_class(config)
    except KeyError as error:
        raise NotYet(f"building the model looked up the key {error}, which this configuration "
                     "replaces with drop_rate_emb, drop_rate_attn and drop_rate_shortcut.") from None
    need(hasattr(model, "drop_emb") and hasattr(model, "trf_blocks"),
         "keep GPTModel's structure (drop_emb, trf_blocks, ...): e.g. build on GPTModel.")
    need(model.drop_emb.p == rates["drop_rate_emb"], "the embedding dropout uses the wrong rate.")
    for block in model.trf_blocks:
        need(block.att.dropout.p == rates["drop_rate_attn"],
             "the attention dropout (inside each block's MultiHeadAttention) uses the wrong rate.")
        need(block.drop_shortcut.p == rates["drop_rate_shortcut"],
             "the shortcut dropout of the blocks uses the wrong rate.")
    reference = pc.GPTModel(tiny_config())
    reference.load_state_dict(model.state_dict())
    idx = torch.randint(0, 60, (2, 10))
    model.eval(), reference.eval()
    with torch.no_grad():
        need(close(model(idx), reference(idx)),
             "with dropout switched off (eval mode) the model should compute what GPTModel does.")
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        need(not close(model(idx), reference(idx)), "in training mode dropout should change the output.")
    return "each kind of dropout now has its own rate."


# ---------------------------------------------------------------------------
# Chapter 5
# ---------------------------------------------------------------------------

@exercise("ch05_ex1", "probabilities at different temperatures")
def _ch05_ex1(softmax_with_temperature):
    need_callable(softmax_with_temperature, "softmax_with_temperature")
    torch.manual_seed(11)
    for logits in [torch.randn(9) * 3, torch.randn(2, 7)]:
        for temperature in [1.0, 0.1, 5.0, 0.7]:
            got = softmax_with_temperature(logits.clone(), temperature)
            need(torch.is_tensor(got) and got.shape == logits.shape,
                 "return a tensor of probabilities shaped like the logits.")
            need(torch.allclose(got.sum(-1), torch.ones(got.shape[:-1]), atol=1e-5),
                 "the probabilities should add up to 1 along the last dimension.")
            if not close(got, torch.softmax(logits / temperature, dim=-1)):
                sharper = got.max(-1).values.min() > torch.softmax(logits, -1).max(-1).values.min()
                need(not (temperature > 1 and sharper),
                     "a temperature above 1 should flatten the distribution, not sharpen it.")
                raise NotYet("close, but not quite: scale the logits by the temperature before the softmax.")
    return "low temperatures sharpen the distribution, high ones flatten it."


def tiny_generation_model():
    model = tiny_model(21, vocab_size=50)
    return model.eval(), torch.tensor([[1, 2, 3], [4, 5, 6]])


@exercise("ch05_ex2", "settings that make generation deterministic")
def _ch05_ex2(deterministic_kwargs, generate_reproducibly):
    need_defined(deterministic_kwargs, "deterministic_kwargs")
    need(isinstance(deterministic_kwargs, dict), "`deterministic_kwargs` should be a dict of settings for generate().")
    model, idx = tiny_generation_model()
    outputs = []
    for seed in [0, 1, 2, 3]:
        torch.manual_seed(seed)
        outputs.append(pc.generate(model, idx, 12, 16, **deterministic_kwargs))
    need(all(torch.equal(outputs[0], out) for out in outputs),
         "with these settings generate() gives different text for different random seeds.")
    need_callable(generate_reproducibly, "generate_reproducibly")
    first = generate_reproducibly(model, idx, 12, 16, seed=7)
    torch.manual_seed(1234)
    torch.rand(5)
    second = generate_reproducibly(model, idx, 12, 16, seed=7)
    need(torch.is_tensor(first) and first.shape == (2, 15), "return the token IDs, as generate() does.")
    need(torch.equal(first, second),
         "the same seed gave different text: set the seed inside the function, just before sampling.")
    others = [generate_reproducibly(model, idx, 12, 16, seed=seed) for seed in range(4)]
    need(not all(torch.equal(others[0], out) for out in others),
         "every seed gives the same text, so it is not sampling: use temperature 1.0 and top_k 5.")
    torch.manual_seed(7)
    need(torch.equal(first, pc.generate(model, idx, 12, 16, temperature=1.0, top_k=5)),
         "it samples, but not with the settings the task asks for: temperature 1.0 and top_k 5, "
         "with the seed set just before generate().")
    return "greedy decoding is deterministic by itself; sampling is repeatable once you fix the seed."


def reference_losses(model, text, context_length, ratio):
    """[training loss, validation loss] of a model (in eval mode), as Exercise 5.3 describes them."""
    split = int(ratio * len(text))
    losses = []
    for piece in (text[:split], text[split:]):
        loader = pc.create_dataloader_v1(piece, batch_size=2, max_length=context_length,
                                         stride=context_length, shuffle=False, drop_last=False)
        losses.append(pc.calc_loss_loader(loader, model, "cpu"))
    return losses


@exercise("ch05_ex3", "the training and validation loss of a model")
def _ch05_ex3(train_val_losses):
    need_callable(train_val_losses, "train_val_losses")
    tokenizer_text = SAMPLE_TEXT * 3
    for seed, (context_length, ratio) in enumerate([(16, 0.9), (8, 0.75)]):
        model = tiny_model(seed, vocab_size=50257, context_length=context_length, drop_rate=0.5, n_layers=1)
        losses = train_val_losses(model, tokenizer_text, context_length, ratio)
        need(isinstance(losses, (tuple, list)) and len(losses) == 2,
             "return two numbers: (training loss, validation loss).")
        model.eval()
        expected = reference_losses(model, tokenizer_text, context_length, ratio)
        got = [float(loss) for loss in losses]
        need(all(math.isfinite(loss) for loss in got), "a loss is not a finite number.")
        if not all(abs(g - e) < 1e-4 for g, e in zip(got, expected)):
            need(not all(abs(g - e) < 1e-4 for g, e in zip(got[::-1], expected)),
                 "you return the two losses in the wrong order: training first.")
            raise NotYet("the losses differ from the reference: split the text by characters at "
                         "train_ratio, cut windows as described, and switch dropout off (model.eval()) "
                         "before measuring.")
    return "an untrained model's loss is close to ln(50257) ≈ 10.8: it is guessing uniformly."


def resume_matches(save_training_state, load_training_state, lr=3e-3, weight_decay=0.1, seed=4):
    """NotYet unless training a reloaded model goes on exactly as the original's does."""
    config = tiny_config()
    model = tiny_model(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    batches = [torch.randint(0, 60, (2, 9)) for _ in range(3)]

    def step(model, optimizer, batch):
        model.train()
        optimizer.zero_grad()
        pc.calc_loss_batch(batch[:, :-1], batch[:, 1:], model, "cpu").backward()
        optimizer.step()

    for batch in batches[:2]:
        step(model, optimizer, batch)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "state.pth")
        save_training_state(path, model, optimizer, config)
        need(os.path.exists(path), "`save_training_state` should write the file at `path`.")
        loaded = load_training_state(path)
    need(isinstance(loaded, (tuple, list)) and len(loaded) == 2,
         "`load_training_state` should return (model, optimizer).")
    new_model, new_optimizer = loaded
    need(isinstance(new_model, nn.Module) and isinstance(new_optimizer, torch.optim.Optimizer),
         "`load_training_state` should return a model and an optimizer.")
    need(new_model is not model, "build a new model from the file rather than reusing the old one.")
    need(all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), new_model.state_dict().values())),
         "the reloaded model's weights differ from the saved ones.")
    step(model, optimizer, batches[2])
    step(new_model, new_optimizer, batches[2])
    need(all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parameters(), new_model.parameters())),
         "one more training step changes the reloaded model differently: AdamW keeps running "
         "averages of the gradients (and its settings) that must be saved and restored too.")


@exercise("ch05_ex4", "continue training from a saved checkpoint")
def _ch05_ex4(save_training_state, load_training_state):
    need_callable(save_training_state, "save_training_state")
    need_callable(load_training_state, "load_training_state")
    resume_matches(save_training_state, load_training_state)
    return "training picks up exactly where it stopped."


# ---------------------------------------------------------------------------
# Chapter 6
# ---------------------------------------------------------------------------

def tiny_classifier(seed, **changes):
    model = tiny_model(seed, **changes)
    torch.manual_seed(seed + 100)
    model.out_head = nn.Linear(model.out_head.in_features, 2)
    return model


@exercise("ch06_ex1", "classifying on the first token")
def _ch06_ex1(calc_loss_first_token):
    need_callable(calc_loss_first_token, "calc_loss_first_token")
    model = tiny_classifier(8).eval()
    torch.manual_seed(9)
    for batch_size in [3, 5]:
        inputs, labels = torch.randint(0, 60, (batch_size, 11)), torch.randint(0, 2, (batch_size,))
        got = calc_loss_first_token(inputs, labels, model, "cpu")
        need(torch.is_tensor(got) and got.numel() == 1, "return the loss as a one-number tensor.")
        with torch.no_grad():
            first = torch.nn.functional.cross_entropy(model(inputs)[:, 0, :], labels)
            last = torch.nn.functional.cross_entropy(model(inputs)[:, -1, :], labels)
        need(not torch.allclose(got.detach(), last), "that is the loss on the last token's output.")
        need(torch.allclose(got.detach(), first, atol=1e-5),
             "the loss differs from the cross-entropy of the first position's class scores.")
    return "but with a causal mask the first token sees only itself, so it knows nothing of the message."


@exercise("ch06_ex2", "training all layers or only the last block")
def _ch06_ex2(set_trainable, count_trainable):
    need_callable(set_trainable, "set_trainable")
    need_callable(count_trainable, "count_trainable")
    model = tiny_classifier(1, n_layers=3)
    for p in model.parameters():
        p.requires_grad_(False)
    returned = set_trainable(model, "all")
    need(returned is model or returned is None, "change the model in place (and return it, if you like).")
    need(all(p.requires_grad for p in model.parameters()), "with 'all', every parameter should be trainable.")
    set_trainable(model, "last_block")
    should_train = ({id(p) for p in model.trf_blocks[-1].parameters()}
                    | {id(p) for p in model.final_norm.parameters()} | {id(p) for p in model.out_head.parameters()})
    for name, p in model.named_parameters():
        if id(p) in should_train:
            need(p.requires_grad, f"with 'last_block', {name} should be trainable "
                                  "(the last block, the final norm and the head train).")
        else:
            need(not p.requires_grad, f"with 'last_block', {name} should be frozen.")
    for candidate in [model, tiny_classifier(2), nn.Linear(5, 3)]:
        expected = sum(p.numel() for p in candidate.parameters() if p.requires_grad)
        need(int(count_trainable(candidate)) == expected,
             "`count_trainable` is off: count only the elements of parameters with requires_grad.")
    return "training everything costs more per step and usually buys a little accuracy."


def padded_dataset_matches(make_padded_dataset, texts, context_length):
    """NotYet unless make_padded_dataset pads (or cuts) every message to the model's context."""
    tokenizer = gpt2_tokenizer()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "messages.csv")
        with open(path, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["Label", "Text"])
            for i, text in enumerate(texts):
                writer.writerow([i % 2, text])
        model = tiny_model(0, vocab_size=50257, context_length=context_length, n_layers=1)
        dataset = make_padded_dataset(path, tokenizer, model)
        need(len(dataset) == len(texts), "the dataset should hold every message of the file.")
        for i, text in enumerate(texts):
            ids, label = dataset[i]
            need(ids.shape == (context_length,), "every example should be exactly as long as the model's context.")
            encoded = tokenizer.encode(text)[:context_length]
            need(ids[:len(encoded)].tolist() == encoded, "the tokens of the message are not all there.")
            need(ids[len(encoded):].eq(50256).all(), "pad the rest with the end-of-text token (50256).")
            need(int(label) == i % 2, "the labels got mixed up.")


@exercise("ch06_ex3", "a longer context")
def _ch06_ex3(make_padded_dataset):
    need_callable(make_padded_dataset, "make_padded_dataset")
    texts = ["Free entry! Text WIN to 80000 now", "See you at the station at six?",
             "Congratulations " * 30, "ok"]
    for context_length in [24, 40]:
        padded_dataset_matches(make_padded_dataset, texts, context_length)
    return "padding to the full context works, at the price of much longer (slower) inputs."


# ---------------------------------------------------------------------------
# Chapter 7
# ---------------------------------------------------------------------------

_ENTRIES = [
    {"instruction": "Name a colour of the sky.", "input": "", "output": "Blue."},
    {"instruction": "Translate to French.", "input": "good morning", "output": "bonjour"},
    {"instruction": "Add the numbers.", "input": "  ", "output": "0"},
]


@exercise("ch07_ex1", "a Phi-3-style prompt")
def _ch07_ex1(format_input_phi3, format_example_phi3):
    need_callable(format_input_phi3, "format_input_phi3")
    need_callable(format_example_phi3, "format_example_phi3")
    for entry in _ENTRIES:
        prompt = "<|user|>\n" + entry["instruction"]
        if entry["input"].strip():
            prompt += "\n" + entry["input"]
        got = format_input_phi3(dict(entry))
        need(isinstance(got, str), "`format_input_phi3` should return a string.")
        need(got.startswith("<|user|>\n"), "the prompt starts with <|user|> on a line of its own.")
        if got != prompt:
            hint = ("an empty (or blank) input adds nothing, not even a newline."
                    if not entry["input"].strip() else "the input goes on a new line after the instruction.")
            raise NotYet(f"the prompt is not quite right: {hint}")
        full = format_example_phi3(dict(entry))
        need(full == prompt + "\n<|assistant|>\n" + entry["output"],
             "the full example is the prompt, a new line, <|assistant|> on its own line, then the output.")
    return "the Phi-3 style is shorter than Alpaca's, so each example costs fewer tokens."


def masked_targets(batch, ignore_index=-100):
    """The targets of Exercise 7.2, built here step by step: shifted, padding and prompt masked."""
    width = max(len(ids) for ids, _ in batch)
    rows = []
    for ids, prompt_length in batch:
        row = list(ids[1:]) + [50256] + [ignore_index] * (width - len(ids))
        row[:max(prompt_length - 1, 0)] = [ignore_index] * max(prompt_length - 1, 0)
        rows.append(row)
    return torch.tensor(rows)


def collate_without_shortcut(collate_masked, batch):
    """collate_masked's result; NotYet if it let custom_collate_fn do the masking."""
    with watch_calls(pc.custom_collate_fn) as calls:
        got = collate_masked([(list(ids), n) for ids, n in batch])
    need(not any(call.get("mask_prompt") for call in calls[pc.custom_collate_fn]),
         "the task asks you to mask the prompt yourself, without custom_collate_fn(..., mask_prompt=True).")
    need(isinstance(got, (tuple, list)) and len(got) == 2, "return (inputs, targets).")
    return got


@exercise("ch07_ex2", "masking the instruction in the loss")
def _ch07_ex2(collate_masked):
    need_callable(collate_masked, "collate_masked")
    batches = [
        [([10, 11, 12, 13, 14], 3), ([20, 21], 1)],
        [([1, 2, 3, 4], 2), ([5, 6, 7, 8, 9, 10, 11], 5), ([12, 13, 14], 2)],
    ]
    for batch in batches:
        inputs, targets = collate_without_shortcut(collate_masked, batch)
        want_inputs = pc.custom_collate_fn([ids for ids, _ in batch])[0]
        want_targets = masked_targets(batch)
        need(torch.is_tensor(inputs) and torch.equal(inputs, want_inputs),
             "the inputs should be padded exactly as custom_collate_fn pads them; masking changes only the targets.")
        need(torch.is_tensor(targets) and targets.shape == want_targets.shape, "the targets have the wrong shape.")
        plain = pc.custom_collate_fn([ids for ids, _ in batch])[1]
        need(not torch.equal(targets, plain), "nothing of the prompt is masked yet.")
        for row, (ids, prompt_length) in enumerate(batch):
            got_row, want_row = targets[row], want_targets[row]
            if torch.equal(got_row, want_row):
                continue
            masked = int((got_row[:prompt_length] == -100).sum())
            need(masked <= prompt_length - 1,
                 "too many targets are masked: the target at the last prompt position is the first "
                 "response token, and the model must learn it.")
            need(masked >= prompt_length - 1,
                 "some targets that are still prompt tokens are not masked.")
            raise NotYet("the response targets and the padding should stay as custom_collate_fn makes them.")
    return "now the loss counts only the response, the part we want the model to write."


@exercise("ch07_ex3", "LoRA for instruction fine-tuning")
def _ch07_ex3(add_lora):
    need_callable(add_lora, "add_lora")
    model = tiny_model(6)
    idx = torch.randint(0, 60, (2, 8))
    model.eval()
    with torch.no_grad():
        before = model(idx)
    linear_shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    rank = 3
    returned = add_lora(model, rank, 8)
    model = returned if isinstance(returned, nn.Module) else model
    wrapped = [m for m in model.modules() if isinstance(m, pc.LinearWithLoRA)]
    need(len(wrapped) == len(linear_shapes), "every nn.Linear of the model should get a LoRA wrapper.")
    need(all(m.lora.A.shape[1] == rank for m in wrapped), "use the rank you are given.")
    expected = sum(rank * (i + o) for i, o in linear_shapes)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    need(trainable == expected,
         "only the LoRA matrices A and B should be trainable: freeze the model's own weights first.")
    model.eval()
    with torch.no_grad():
        need(close(model(idx), before), "before training, LoRA should not change the model's output.")
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = pc.calc_loss_batch(idx[:, :-1], idx[:, 1:], model, "cpu")
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model.eval()
        need(not close(model(idx), before), "after a training step the output should change.")
    return "the original weights stay frozen; only a small share of parameters learn."
