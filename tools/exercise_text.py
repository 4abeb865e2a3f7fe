"""The text of the exercise notebooks: one entry per chapter, one per exercise.

tools/make_exercises.py turns this into exercises/chNN_exercises.ipynb (answer cells
with a stub under "# your code here") and solutions/chNN_exercises.ipynb (the same
notebook with the answers written in). Edit here, then run `python tools/make_exercises.py`.

Each exercise: id (as in exercise_checks.py), heading, task (markdown), stub (the code
a learner starts from), solution (the finished code), args (the names passed to the check).
"""

CHAPTERS = {}

CHAPTERS["ch02"] = {
    "notebook": "ch02_text_data.ipynb",
    "title": "Chapter 2 exercises: working with text data",
    "imports": """\
import tiktoken
import torch

from previous_chapters import GPTDatasetV1, create_dataloader_v1

tokenizer = tiktoken.get_encoding("gpt2")""",
    "exercises": [
        {
            "id": "ch02_ex1",
            "heading": "Unknown words and byte-pair encoding",
            "task": """\
A word-level tokenizer has no ID for a word it never saw. GPT-2's byte-pair encoding
(BPE) has no such gap: it breaks an unfamiliar word into smaller pieces it does know,
down to single characters if it must.

Write `bpe_pieces(text)`, which returns the list of text pieces GPT-2's tokenizer cuts
`text` into, one string per token ID, in order. Joined together, the pieces must give
back `text` exactly. Then try it on a made-up word or two, such as `"Akwirw ier"`, and
look at where the cuts fall. (The check tries words of its own.)""",
            "stub": """\
def bpe_pieces(text):
    ...""",
            "solution": """\
def bpe_pieces(text):
    return [tokenizer.decode([token_id]) for token_id in tokenizer.encode(text)]


for word in ["Akwirw ier", "someunknownPlace"]:
    print(repr(word), "->", bpe_pieces(word))""",
            "args": ["bpe_pieces"],
        },
        {
            "id": "ch02_ex2",
            "heading": "Data loaders with other window lengths and strides",
            "task": """\
`create_dataloader_v1` cuts a text into input windows of `max_length` tokens, starting a
new window every `stride` tokens, and pairs each window with the same window shifted one
token right.

Write `make_loader(text, max_length, stride, batch_size)`, returning a data loader over
`text` with those settings that yields the windows **in order** (no shuffling) and
**keeps** a last batch that is smaller than `batch_size`. Then look at the first batch
for `max_length=2, stride=2` and for `max_length=8, stride=2`.""",
            "stub": """\
def make_loader(text, max_length, stride, batch_size):
    ...""",
            "solution": """\
def make_loader(text, max_length, stride, batch_size):
    return create_dataloader_v1(text, batch_size=batch_size, max_length=max_length,
                                stride=stride, shuffle=False, drop_last=False)


text = "In the beginning the lighthouse was dark, and the ships kept well away from the rocks."
for max_length, stride in [(2, 2), (8, 2)]:
    inputs, targets = next(iter(make_loader(text, max_length, stride, batch_size=3)))
    print(f"max_length={max_length}, stride={stride}:\\n", inputs)""",
            "args": ["make_loader"],
        },
        {
            "id": "ch02_ex3",
            "heading": "How much do consecutive windows overlap?",
            "task": """\
When the stride is smaller than the window, consecutive windows share tokens, and the
model sees those tokens more than once per epoch.

Write `overlap(max_length, stride)`: how many tokens the first input window and the
second one have in common. Work it out on paper for a case or two before you code it;
then compute the overlap for `max_length=256` with the strides 1, 128 and 256.""",
            "stub": """\
def overlap(max_length, stride):
    ...""",
            "solution": """\
def overlap(max_length, stride):
    # Window 1 covers positions 0 .. max_length-1, window 2 starts at position `stride`.
    return max(max_length - stride, 0)


for stride in [1, 128, 256]:
    print(f"max_length=256, stride={stride}: {overlap(256, stride)} shared tokens")""",
            "args": ["overlap"],
        },
    ],
}

CHAPTERS["ch03"] = {
    "notebook": "ch03_attention.ipynb",
    "title": "Chapter 3 exercises: attention",
    "imports": """\
import torch
import torch.nn as nn

from exercise_checks import SelfAttention_v1, SelfAttention_v2
from previous_chapters import MultiHeadAttention, MultiHeadAttentionWrapper""",
    "exercises": [
        {
            "id": "ch03_ex1",
            "heading": "Two self-attention classes, one result",
            "task": """\
`SelfAttention_v1` keeps its three weight matrices as `nn.Parameter`s of shape
`(d_in, d_out)` and multiplies `x @ W`; `SelfAttention_v2` uses `nn.Linear` layers
instead (both classes come with `exercise_checks.py` and work as in Section 3.4). With
different random weights they give different outputs, but they compute the same thing.

Show it: write `copy_weights(sa_v2, sa_v1)`, which copies the weights of a
`SelfAttention_v2` instance into a `SelfAttention_v1` instance so that both then give
the same output for any input. Look at the shapes of `sa_v2.W_query.weight` and
`sa_v1.W_query` first.""",
            "stub": """\
def copy_weights(sa_v2, sa_v1):
    ...""",
            "solution": """\
def copy_weights(sa_v2, sa_v1):
    # nn.Linear stores (d_out, d_in) and computes x @ weight.T; v1 wants (d_in, d_out).
    sa_v1.W_query = nn.Parameter(sa_v2.W_query.weight.detach().T.clone())
    sa_v1.W_key = nn.Parameter(sa_v2.W_key.weight.detach().T.clone())
    sa_v1.W_value = nn.Parameter(sa_v2.W_value.weight.detach().T.clone())


torch.manual_seed(123)
sa_v1, sa_v2 = SelfAttention_v1(3, 2), SelfAttention_v2(3, 2)
copy_weights(sa_v2, sa_v1)
x = torch.rand(6, 3)
print(torch.allclose(sa_v1(x), sa_v2(x)))""",
            "args": ["copy_weights"],
        },
        {
            "id": "ch03_ex2",
            "heading": "Attention with a 2-dimensional output",
            "task": """\
`MultiHeadAttentionWrapper` runs several `CausalAttention` heads and concatenates their
outputs, so the output size is the number of heads times each head's `d_out`.

Build `mha_2d`: a `MultiHeadAttentionWrapper` with **two** heads for inputs of 3 numbers
per token (`d_in=3`) and contexts of up to 6 tokens, no dropout, whose output has **2**
numbers per token. Run it on a batch of shape `(2, 6, 3)` and print the output's shape.""",
            "stub": """\
mha_2d = None""",
            "solution": """\
torch.manual_seed(123)
mha_2d = MultiHeadAttentionWrapper(d_in=3, d_out=1, context_length=6, dropout=0.0, num_heads=2)
print(mha_2d(torch.rand(2, 6, 3)).shape)""",
            "args": ["mha_2d"],
        },
        {
            "id": "ch03_ex3",
            "heading": "A GPT-2-sized multi-head attention module",
            "task": """\
GPT-2 small embeds every token in 768 numbers, works on up to 1,024 tokens and has 12
attention heads.

1. Build `mha_gpt2`, a `MultiHeadAttention` of that size: 768 numbers in and out,
   1,024 tokens of context, 12 heads (any dropout rate).
2. Write `count_parameters(module)`, the number of parameters (every element of every
   weight and bias, trainable or frozen) of any PyTorch module.
3. Print how many parameters `mha_gpt2` has. Which parts hold them?""",
            "stub": """\
mha_gpt2 = None


def count_parameters(module):
    ...""",
            "solution": """\
mha_gpt2 = MultiHeadAttention(d_in=768, d_out=768, context_length=1024, dropout=0.0, num_heads=12)


def count_parameters(module):
    return sum(p.numel() for p in module.parameters())


print(f"{count_parameters(mha_gpt2):,} parameters")
for name, p in mha_gpt2.named_parameters():
    print(f"{name:16s} {tuple(p.shape)}")""",
            "args": ["mha_gpt2", "count_parameters"],
        },
    ],
}

CHAPTERS["ch04"] = {
    "notebook": "ch04_gpt_model.ipynb",
    "title": "Chapter 4 exercises: the GPT model",
    "imports": """\
import torch
import torch.nn as nn

from previous_chapters import GPT_CONFIG_124M, MODEL_CONFIGS, GPTModel, TransformerBlock""",
    "exercises": [
        {
            "id": "ch04_ex1",
            "heading": "Parameters in the feed-forward and attention parts",
            "task": """\
A `TransformerBlock` has two parts with weights: `att` (multi-head attention) and `ff`
(the feed-forward network), plus two small layer norms.

Write `block_param_counts(cfg)`, returning a dict `{"feed_forward": ..., "attention": ...}`
with the number of parameters of each part of one block built from the configuration
`cfg`. Then compare the two for `GPT_CONFIG_124M`: which part is larger, and by how much?""",
            "stub": """\
def block_param_counts(cfg):
    ...""",
            "solution": """\
def block_param_counts(cfg):
    block = TransformerBlock(cfg)
    return {"feed_forward": sum(p.numel() for p in block.ff.parameters()),
            "attention": sum(p.numel() for p in block.att.parameters())}


counts = block_param_counts(GPT_CONFIG_124M)
print(counts, f"ratio {counts['feed_forward'] / counts['attention']:.2f}")""",
            "args": ["block_param_counts"],
        },
        {
            "id": "ch04_ex2",
            "heading": "GPT-2 medium, large and XL",
            "task": """\
The larger GPT-2 models differ from the small one only in three settings: the embedding
size, the number of blocks and the number of heads (`MODEL_CONFIGS` lists them).

1. Make `gpt2_configs`, a dict with the keys `"gpt2-medium"`, `"gpt2-large"` and
   `"gpt2-xl"`, each a full configuration: `GPT_CONFIG_124M` with those three settings
   changed.
2. Write `count_gpt_params(cfg)`: the number of parameters a `GPTModel(cfg)` has. Try to
   do it without building the whole model (the XL model needs several GB of memory); you
   may build single small parts, such as one `TransformerBlock`.
3. Print the count for every configuration, and how many megabytes the weights take as
   32-bit floats.""",
            "stub": """\
gpt2_configs = None


def count_gpt_params(cfg):
    ...""",
            "solution": """\
gpt2_configs = {
    "gpt2-medium": {**GPT_CONFIG_124M, **MODEL_CONFIGS["gpt2-medium (355M)"]},
    "gpt2-large": {**GPT_CONFIG_124M, **MODEL_CONFIGS["gpt2-large (774M)"]},
    "gpt2-xl": {**GPT_CONFIG_124M, **MODEL_CONFIGS["gpt2-xl (1558M)"]},
}


def count_gpt_params(cfg):
    emb, vocab = cfg["emb_dim"], cfg["vocab_size"]
    embeddings = vocab * emb + cfg["context_length"] * emb
    block = sum(p.numel() for p in TransformerBlock(cfg).parameters())
    final_norm = 2 * emb
    out_head = emb * vocab  # no bias
    return embeddings + cfg["n_layers"] * block + final_norm + out_head


for name, cfg in {"gpt2-small": GPT_CONFIG_124M, **gpt2_configs}.items():
    n = count_gpt_params(cfg)
    print(f"{name:12s} {n:>13,} parameters, {n * 4 / 1024**2:,.0f} MB")""",
            "args": ["gpt2_configs", "count_gpt_params"],
        },
        {
            "id": "ch04_ex3",
            "heading": "Separate dropout rates",
            "task": """\
`GPTModel` uses one rate, `cfg["drop_rate"]`, for all its dropout layers: after the
embeddings, on the attention weights and on the shortcut connections.

Write a class `GPTModelDropouts` that reads three rates from its configuration instead:
`"drop_rate_emb"`, `"drop_rate_attn"` and `"drop_rate_shortcut"` (the configuration has no
`"drop_rate"`). Keep `GPTModel`'s structure and parameter names, so that a `GPTModel`
state dict loads into it. Subclassing `GPTModel` keeps this short.""",
            "stub": """\
class GPTModelDropouts(nn.Module):
    ...""",
            "solution": """\
class GPTModelDropouts(GPTModel):
    def __init__(self, cfg):
        super().__init__({**cfg, "drop_rate": 0.0})
        self.drop_emb.p = cfg["drop_rate_emb"]
        for block in self.trf_blocks:
            block.att.dropout.p = cfg["drop_rate_attn"]
            block.drop_shortcut.p = cfg["drop_rate_shortcut"]


cfg = {key: value for key, value in GPT_CONFIG_124M.items() if key != "drop_rate"}
cfg.update(drop_rate_emb=0.1, drop_rate_attn=0.2, drop_rate_shortcut=0.05,
           n_layers=2, emb_dim=64, n_heads=4)  # small, to build quickly
model = GPTModelDropouts(cfg)
print(model.drop_emb, model.trf_blocks[0].att.dropout, model.trf_blocks[0].drop_shortcut)""",
            "args": ["GPTModelDropouts"],
        },
    ],
}

CHAPTERS["ch05"] = {
    "notebook": "ch05_pretraining.ipynb",
    "title": "Chapter 5 exercises: pretraining",
    "imports": """\
import tiktoken
import torch

from previous_chapters import (GPTModel, calc_loss_batch, calc_loss_loader, create_dataloader_v1,
                               generate, load_gpt_checkpoint, save_gpt_checkpoint)

tokenizer = tiktoken.get_encoding("gpt2")
# A small model, so that every exercise runs in seconds on a CPU. Its weights are random:
# the exercises are about the machinery, not about good text.
SMALL_CONFIG = {"vocab_size": 50257, "context_length": 32, "emb_dim": 32, "n_heads": 2,
                "n_layers": 2, "drop_rate": 0.1, "qkv_bias": False}""",
    "exercises": [
        {
            "id": "ch05_ex1",
            "heading": "Probabilities at different temperatures",
            "task": """\
Sampling divides the logits by a temperature before the softmax.

Write `softmax_with_temperature(logits, temperature)`, returning the probabilities
(softmax over the last dimension) of the logits scaled by `temperature`. Then, for the
logits below, print the probability of the most likely token at the temperatures 0.1, 1
and 5, and say in one sentence what happens.""",
            "stub": """\
logits = torch.tensor([4.5, 0.9, -1.9, 6.8, 1.6, -1.6, 6.3, -2.0, 1.8])


def softmax_with_temperature(logits, temperature):
    ...""",
            "solution": """\
logits = torch.tensor([4.5, 0.9, -1.9, 6.8, 1.6, -1.6, 6.3, -2.0, 1.8])


def softmax_with_temperature(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


for temperature in [0.1, 1.0, 5.0]:
    probas = softmax_with_temperature(logits, temperature)
    print(f"T={temperature}: most likely token gets {probas.max().item():.3f}")""",
            "args": ["softmax_with_temperature"],
        },
        {
            "id": "ch05_ex2",
            "heading": "Settings that make generation deterministic",
            "task": """\
`generate(model, idx, max_new_tokens, context_size, temperature=..., top_k=..., top_p=...)`
samples when the temperature is above 0, so two calls usually write different text.

1. Make `deterministic_kwargs`, a dict of settings for `generate` under which it always
   returns the same tokens, whatever the random seed.
2. Write `generate_reproducibly(model, idx, max_new_tokens, context_size, seed)`, which
   **samples** with temperature 1.0 and top-k 5, yet returns the same tokens every time it
   is called with the same seed.""",
            "stub": """\
deterministic_kwargs = None


def generate_reproducibly(model, idx, max_new_tokens, context_size, seed):
    ...""",
            "solution": """\
deterministic_kwargs = {"temperature": 0.0}  # greedy: always the most likely token


def generate_reproducibly(model, idx, max_new_tokens, context_size, seed):
    torch.manual_seed(seed)
    return generate(model, idx, max_new_tokens, context_size, temperature=1.0, top_k=5)


torch.manual_seed(123)
model = GPTModel(SMALL_CONFIG).eval()
idx = torch.tensor([tokenizer.encode("Every effort moves you")])
for seed in [1, 1, 2]:
    out = generate_reproducibly(model, idx, 5, SMALL_CONFIG["context_length"], seed)
    print(seed, out[0, -5:].tolist())""",
            "args": ["deterministic_kwargs", "generate_reproducibly"],
        },
        {
            "id": "ch05_ex3",
            "heading": "The training and validation loss of a model",
            "task": """\
Write `train_val_losses(model, text, context_length, train_ratio)`, returning the pair
`(training loss, validation loss)` of `model` on `text`:

- the first `int(train_ratio * len(text))` **characters** are the training text, the
  rest the validation text;
- cut each into windows with `create_dataloader_v1(..., batch_size=2,
  max_length=context_length, stride=context_length, shuffle=False, drop_last=False)`;
- the loss is the average over all batches (`calc_loss_loader`), measured with dropout
  switched off, on the CPU.

Then print both losses for an untrained model. Compare them with the loss of a model that
guesses every one of the 50,257 tokens with equal probability, `ln(50257)`.""",
            "stub": """\
def train_val_losses(model, text, context_length, train_ratio):
    ...""",
            "solution": """\
def train_val_losses(model, text, context_length, train_ratio):
    split = int(train_ratio * len(text))
    model.eval()  # no dropout while measuring
    losses = []
    for part in (text[:split], text[split:]):
        loader = create_dataloader_v1(part, batch_size=2, max_length=context_length,
                                      stride=context_length, shuffle=False, drop_last=False)
        losses.append(calc_loss_loader(loader, model, "cpu"))
    return tuple(losses)


import math

text = ("The keeper walked up the stairs every evening to light the lamp. " * 40)
torch.manual_seed(123)
model = GPTModel(SMALL_CONFIG)
train_loss, val_loss = train_val_losses(model, text, SMALL_CONFIG["context_length"], 0.9)
print(f"train {train_loss:.2f}, validation {val_loss:.2f}, uniform guess {math.log(50257):.2f}")""",
            "args": ["train_val_losses"],
        },
        {
            "id": "ch05_ex4",
            "heading": "Continue training from a saved checkpoint",
            "task": """\
Training often stops (a laptop goes to sleep, a time limit runs out) and has to pick up
later. That needs more than the model's weights: AdamW keeps running averages of past
gradients for every parameter, and its settings.

Write `save_training_state(path, model, optimizer, config)` and
`load_training_state(path)`, which returns a fresh `(model, optimizer)` pair such that
training goes on exactly as if it had never stopped. The model is a `GPTModel` built
from `config`; the optimizer is an AdamW. (`save_gpt_checkpoint` and
`load_gpt_checkpoint` from Chapter 5 do much of the work.)""",
            "stub": """\
def save_training_state(path, model, optimizer, config):
    ...


def load_training_state(path):
    ...""",
            "solution": """\
def save_training_state(path, model, optimizer, config):
    save_gpt_checkpoint(path, model, config, optimizer)


def load_training_state(path):
    model, checkpoint = load_gpt_checkpoint(path)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters())
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])  # also restores lr, weight decay
    return model, optimizer


import os
import tempfile

torch.manual_seed(123)
model = GPTModel(SMALL_CONFIG)
optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=0.1)
batch = torch.tensor([tokenizer.encode("The keeper walked up the stairs every evening.")])
with tempfile.TemporaryDirectory() as folder:
    save_training_state(os.path.join(folder, "state.pth"), model, optimizer, SMALL_CONFIG)
    model, optimizer = load_training_state(os.path.join(folder, "state.pth"))
print(optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["weight_decay"])""",
            "args": ["save_training_state", "load_training_state"],
        },
    ],
}

CHAPTERS["ch06"] = {
    "notebook": "ch06_classification.ipynb",
    "title": "Chapter 6 exercises: fine-tuning for classification",
    "imports": """\
import tiktoken
import torch
import torch.nn as nn

from previous_chapters import GPTModel, SpamDataset, add_classification_head

tokenizer = tiktoken.get_encoding("gpt2")
# A small model with random weights: the exercises are about the machinery of
# fine-tuning, and a small model keeps each one to a few seconds on a CPU.
SMALL_CONFIG = {"vocab_size": 50257, "context_length": 64, "emb_dim": 32, "n_heads": 2,
                "n_layers": 3, "drop_rate": 0.0, "qkv_bias": True}""",
    "exercises": [
        {
            "id": "ch06_ex1",
            "heading": "Classifying on the first token instead of the last",
            "task": """\
The classifier of Chapter 6 reads the class scores at the **last** position of the
output, the one token that attended to the whole message.

Write `calc_loss_first_token(input_batch, target_batch, model, device)`, the same
cross-entropy loss as `calc_classifier_loss_batch` but computed on the **first**
position's class scores. Then think about it: what does the model's output at the first
position know about the rest of the message?""",
            "stub": """\
def calc_loss_first_token(input_batch, target_batch, model, device):
    ...""",
            "solution": """\
def calc_loss_first_token(input_batch, target_batch, model, device):
    input_batch, target_batch = input_batch.to(device), target_batch.to(device)
    logits = model(input_batch)[:, 0, :]  # (batch_size, num_classes): the first position
    return torch.nn.functional.cross_entropy(logits, target_batch)


torch.manual_seed(123)
model = add_classification_head(GPTModel(SMALL_CONFIG))
a = torch.tensor([tokenizer.encode("Win a prize now")])
b = torch.tensor([tokenizer.encode("Win a meeting later")])
with torch.no_grad():
    # The causal mask lets the first position see only the first token.
    print(torch.allclose(model(a)[:, 0, :], model(b)[:, 0, :]))""",
            "args": ["calc_loss_first_token"],
        },
        {
            "id": "ch06_ex2",
            "heading": "Training all layers or only the last block",
            "task": """\
`add_classification_head` freezes everything except the last transformer block, the
final layer norm and the new output head.

1. Write `set_trainable(model, mode)`: with `mode="all"` every parameter of the model is
   trainable; with `mode="last_block"` only the last transformer block, `final_norm` and
   `out_head` are, and all else is frozen. It changes the model in place.
2. Write `count_trainable(model)`, the number of trainable parameters.
3. Print the counts for both modes on a classifier built from `SMALL_CONFIG`.""",
            "stub": """\
def set_trainable(model, mode):
    ...


def count_trainable(model):
    ...""",
            "solution": """\
def set_trainable(model, mode):
    for p in model.parameters():
        p.requires_grad = mode == "all"
    if mode == "last_block":
        for part in (model.trf_blocks[-1], model.final_norm, model.out_head):
            for p in part.parameters():
                p.requires_grad = True
    return model


def count_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


torch.manual_seed(123)
model = add_classification_head(GPTModel(SMALL_CONFIG))
for mode in ["last_block", "all"]:
    set_trainable(model, mode)
    print(f"{mode:10s} {count_trainable(model):>10,} trainable parameters")""",
            "args": ["set_trainable", "count_trainable"],
        },
        {
            "id": "ch06_ex3",
            "heading": "Padding to the full context",
            "task": """\
In Chapter 6 every message is padded to the length of the longest training message.
What if we pad to the model's whole context length instead?

Write `make_padded_dataset(csv_file, tokenizer, model)`, returning a `SpamDataset` of the
messages in `csv_file` (columns `Label` and `Text`) in which every example is exactly as
long as `model`'s context (`model.pos_emb.weight.shape[0]`): long messages cut, short ones
padded with token 50256.""",
            "stub": """\
def make_padded_dataset(csv_file, tokenizer, model):
    ...""",
            "solution": """\
def make_padded_dataset(csv_file, tokenizer, model):
    context_length = model.pos_emb.weight.shape[0]
    return SpamDataset(csv_file, tokenizer, max_length=context_length)


import os
import tempfile

import pandas as pd

torch.manual_seed(123)
model = add_classification_head(GPTModel(SMALL_CONFIG))
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "few.csv")
    pd.DataFrame({"Label": [0, 1], "Text": ["See you at six", "WIN a FREE cruise, reply YES"]}).to_csv(path, index=False)
    dataset = make_padded_dataset(path, tokenizer, model)
print(dataset[1][0].shape, dataset[1][0][:10].tolist())""",
            "args": ["make_padded_dataset"],
        },
    ],
}

CHAPTERS["ch07"] = {
    "notebook": "ch07_instruction.ipynb",
    "title": "Chapter 7 exercises: instruction fine-tuning",
    "imports": """\
import torch
import torch.nn as nn

from previous_chapters import (GPTModel, LinearWithLoRA, custom_collate_fn, format_input,
                               replace_linear_with_lora)

entry = {"instruction": "Rewrite the sentence in the passive voice.",
         "input": "The cat chased the mouse.",
         "output": "The mouse was chased by the cat."}""",
    "exercises": [
        {
            "id": "ch07_ex1",
            "heading": "Another prompt style: Phi-3",
            "task": """\
Chapter 7 formats every example in the Alpaca style: a preamble, then `### Instruction:`,
`### Input:` and `### Response:` sections. Microsoft's Phi-3 models use a shorter chat
style, which we write like this:

```
<|user|>
Rewrite the sentence in the passive voice.
The cat chased the mouse.
<|assistant|>
The mouse was chased by the cat.
```

1. Write `format_input_phi3(entry)`, the prompt part: `<|user|>`, a new line, the
   instruction, and, only when the entry's input is not empty or blank, a new line and
   the input.
2. Write `format_example_phi3(entry)`, the whole training example: the prompt, a new line,
   `<|assistant|>`, a new line, and the output.
3. How many characters shorter is the Phi-3 prompt of `entry` than the Alpaca one
   (`format_input`)?""",
            "stub": """\
def format_input_phi3(entry):
    ...


def format_example_phi3(entry):
    ...""",
            "solution": """\
def format_input_phi3(entry):
    prompt = "<|user|>\\n" + entry["instruction"]
    if entry.get("input", "").strip():
        prompt += "\\n" + entry["input"]
    return prompt


def format_example_phi3(entry):
    return format_input_phi3(entry) + "\\n<|assistant|>\\n" + entry["output"]


print(format_example_phi3(entry))
print(len(format_input(entry)) - len(format_input_phi3(entry)), "characters shorter")""",
            "args": ["format_input_phi3", "format_example_phi3"],
        },
        {
            "id": "ch07_ex2",
            "heading": "Masking the instruction in the loss",
            "task": """\
`custom_collate_fn` pads a batch and builds the targets; by default the model learns to
predict every token, the instruction included. Here you write the collate function
that makes it learn only the response.

Write `collate_masked(batch, pad_token_id=50256, ignore_index=-100)`. Each item of
`batch` is a pair `(token_ids, prompt_length)`: the token IDs of prompt plus response, and
how many of them belong to the prompt. Build the inputs and targets as
`custom_collate_fn(batch_of_token_ids)` does, then also set to `ignore_index` every target
that is a **prompt** token. Careful with the boundary: target `i` is token `i + 1`. (Do
it yourself rather than calling `custom_collate_fn(..., mask_prompt=True)`.)""",
            "stub": """\
def collate_masked(batch, pad_token_id=50256, ignore_index=-100):
    ...""",
            "solution": """\
def collate_masked(batch, pad_token_id=50256, ignore_index=-100):
    inputs, targets = custom_collate_fn([token_ids for token_ids, _ in batch],
                                        pad_token_id=pad_token_id, ignore_index=ignore_index)
    for row, (_, prompt_length) in enumerate(batch):
        # Targets 0 .. prompt_length - 2 are the prompt tokens 1 .. prompt_length - 1.
        targets[row, :max(prompt_length - 1, 0)] = ignore_index
    return inputs, targets


print(collate_masked([([0, 1, 2, 3, 4], 3), ([5, 6], 1)]))""",
            "args": ["collate_masked"],
        },
        {
            "id": "ch07_ex3",
            "heading": "LoRA for instruction fine-tuning",
            "task": """\
Chapter 6 fine-tuned a classifier with LoRA. The same works for instruction
fine-tuning: freeze the whole model and let only small low-rank matrices learn.

Write `add_lora(model, rank, alpha)`: freeze all of the model's own parameters, then wrap
every `nn.Linear` in a `LinearWithLoRA` of the given rank and alpha (the tools are in
`previous_chapters`), and return the model. Then print what share of a small model's
parameters remains trainable. (With a real GPT-2 model you would train it with
`train_model_simple` as in Chapter 7.)""",
            "stub": """\
def add_lora(model, rank, alpha):
    ...""",
            "solution": """\
def add_lora(model, rank, alpha):
    for p in model.parameters():
        p.requires_grad = False
    return replace_linear_with_lora(model, rank, alpha)


cfg = {"vocab_size": 50257, "context_length": 64, "emb_dim": 64, "n_heads": 4,
       "n_layers": 2, "drop_rate": 0.0, "qkv_bias": True}
torch.manual_seed(123)
model = add_lora(GPTModel(cfg), rank=8, alpha=16)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())
print(f"{trainable:,} of {total:,} parameters train ({trainable / total:.1%})")""",
            "args": ["add_lora"],
        },
    ],
}
