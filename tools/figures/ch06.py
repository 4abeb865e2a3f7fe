"""The figures of Chapter 6: fine-tuning for classification."""

import io
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from tools.figures.style import (
    Figure, INK, MONO, MUTED, arrow, box, cache, canvas, data_file, digraph, fill, gpt_on_meta,
    light, param_count, show_token, stored_output, strong, tokenizer, write)

NB = "ch06_classification.ipynb"


def draw_ch06_last_token():
    """The causal mask of "Do you have time" and the scores the stored run printed."""
    printed = stored_output(NB, "3d5799e5")
    scores = [float(v) for v in re.search(r"tensor\(\[\[(.*?)\]\]\)", printed).group(1).split(",")]
    shape = re.search(r"outputs: torch.Size\(\[(.*?)\]\)", stored_output(NB, "90c358e9")).group(1)
    tok = tokenizer()
    ids = tok.encode("Do you have time")
    pieces = [show_token(tok.decode([i])) for i in ids]
    n = len(ids)
    fig, ax = canvas(9.8, 4.8)
    cell = 0.55
    top = 3.55
    x1 = 1.8
    visible = np.tril(np.ones((n, n)))
    for i in range(n):
        for j in range(n):
            last = i == n - 1
            if visible[i, j]:
                face = strong("green") if last else light("orange")
            else:
                face = light("grey")
            ax.add_patch(Rectangle((x1 + j * cell, top - (i + 1) * cell), cell, cell,
                                   facecolor=face, edgecolor="white", lw=1.5,
                                   hatch=None if visible[i, j] else "///"))
        write(ax, x1 - 0.1, top - (i + 0.5) * cell, pieces[i], size=9.5, ha="right",
              family=MONO, weight="bold" if i == n - 1 else "normal")
        write(ax, x1 + (i + 0.5) * cell, top + 0.12, pieces[i], size=9, rotation=45,
              ha="left", va="bottom", rotation_mode="anchor", family=MONO)
    write(ax, x1 + n * cell / 2, top + 0.85, "who sees whom (causal mask)", size=10.5,
          weight="bold")
    write(ax, x1 + n * cell / 2, top - n * cell - 0.3, "rows: token  \u00b7  columns: tokens it "
          "can attend to", size=9, color=MUTED)
    # outputs: only the last row was printed (and only it is used)
    x2 = 5.3
    write(ax, x2 + 0.9, top + 0.85, f"model outputs ({shape})", size=10.5, weight="bold")
    write(ax, x2 + 0.45, top + 0.2, "not spam", size=9, color=MUTED)
    write(ax, x2 + 1.35, top + 0.2, "spam", size=9, color=MUTED)
    for i in range(n):
        last = i == n - 1
        for j in range(2):
            box(ax, x2 + j * 0.9, top - (i + 1) * cell + 0.05, 0.85, cell - 0.1,
                f"{scores[j]:.4f}" if last else "\u00b7", "green" if last else "grey",
                fontsize=9.5, family=MONO, fill=None if last else "white",
                text_color=INK if last else MUTED)
        arrow(ax, (x1 + n * cell + 0.1, top - (i + 0.5) * cell), (x2 - 0.1, top - (i + 0.5) * cell),
              color=strong("green") if last else light("grey"), lw=1.6 if last else 1.0)
    write(ax, x2 + 1.95, top - (n - 0.5) * cell, "\u2190 outputs[:, -1, :]\n     the only row "
          "used", size=9.5, ha="left", color=strong("green"))
    write(ax, x2 + 1.95, top - 0.5 * cell, "\u2190 saw only \u201cDo\u201d", size=9.5,
          ha="left", color=MUTED)
    write(ax, 0.2, 0.5, "Only the last token has attended to the whole message, so its two "
          "scores decide the class.", size=10, ha="left")
    write(ax, 0.2, 0.2, "Last row: the scores the stored run prints in the cell below "
          "(head just added, untrained); the other rows are not printed.", size=9.5,
          ha="left", color=MUTED)
    return fig


def draw_ch06_trainable():
    import torch

    from previous_chapters import add_classification_head, gpt2_config
    model = gpt_on_meta(gpt2_config("gpt2-small (124M)"))
    with torch.device("meta"):
        add_classification_head(model, 2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = param_count(model)
    n_layers = len(model.trf_blocks)
    fig, ax = canvas(9.4, 5.9)
    cx, w = 4.0, 3.6
    x = cx - w / 2

    def part(y, h, label, trained, params):
        color = "green" if trained else "grey"
        box(ax, x, y, w, h, label, color, fontsize=10, ls="-" if trained else "--",
            text_color=INK if trained else MUTED)
        write(ax, x + w + 0.25, y + h / 2, f"{params:,}", size=9.5, ha="left", family=MONO,
              color=strong(color))
        write(ax, x - 0.25, y + h / 2, "trained" if trained else "frozen", size=9.5,
              ha="right", color=strong(color), weight="bold" if trained else "normal")

    write(ax, x + w + 0.25, 5.65, "parameters", size=9.5, ha="left", weight="bold")
    write(ax, x - 0.25, 5.65, "requires_grad", size=9.5, ha="right", weight="bold")
    part(5.0, 0.4, "token + position embeddings", False,
         param_count(model.tok_emb) + param_count(model.pos_emb))
    yb = 4.85
    h = 0.32
    for k in [0, 1, None, n_layers - 2, n_layers - 1]:
        if k is None:
            write(ax, cx, yb - 0.15, "\u22ee", size=14, color=MUTED)
            yb -= 0.38
            continue
        part(yb - h, h, f"transformer block {k + 1}", k == n_layers - 1,
             param_count(model.trf_blocks[k]))
        yb -= h + 0.08
    part(yb - 0.4, 0.4, "final LayerNorm", True, param_count(model.final_norm))
    yb -= 0.48
    part(yb - 0.45, 0.45, "new out_head: Linear(768 \u2192 2)", True,
         param_count(model.out_head))
    yb -= 0.5
    write(ax, 0.3, yb - 0.35, f"trained: {trainable:,} of {total:,} parameters "
          f"({100 * trainable / total:.1f}%)", size=10.5, ha="left")
    write(ax, 0.3, yb - 0.7, "add_classification_head sets requires_grad = False everywhere, "
          "then True for the last block, the final norm", size=9.5, ha="left", color=MUTED)
    write(ax, 0.3, yb - 0.98, "and the new head (GPT-2 small, counted on PyTorch's meta "
          "device).", size=9.5, ha="left", color=MUTED)
    return fig


def draw_ch06_lora():
    import torch

    from previous_chapters import LinearWithLoRA
    d, r, alpha = 768, 16, 16
    with torch.device("meta"):
        wrapped = LinearWithLoRA(torch.nn.Linear(d, d), rank=r, alpha=alpha)
    n_w = wrapped.linear.weight.numel()
    n_a, n_b = wrapped.lora.A.numel(), wrapped.lora.B.numel()
    fig, ax = canvas(9.6, 5.9)
    side, thin = 2.2, 0.2
    wx, wy = 2.4, 3.0
    box(ax, 0.2, 3.8, 1.2, 0.6, "x\n(\u2026, 768)", "blue", fontsize=10)
    box(ax, wx, wy, side, side, "", "grey", ls="--", rounding=0.02)
    write(ax, wx + side / 2, wy + side / 2 + 0.25, "W", size=18, weight="bold", color=MUTED)
    write(ax, wx + side / 2, wy + side / 2 - 0.35, f"768 \u00d7 768\n{n_w:,} numbers",
          size=9.5, color=MUTED)
    write(ax, wx + side / 2, wy + side + 0.22, "pretrained weight: frozen", size=10.5,
          weight="bold", color=strong("grey"))
    # A (in_dim x rank) and B (rank x out_dim), with the data flow x -> A -> B
    ay = 0.45
    bx, by = wx + 0.75, ay + side - thin
    box(ax, wx, ay, thin, side, "", "green", rounding=0.02)
    write(ax, wx + thin / 2, ay - 0.2, "A", size=12, weight="bold", color=strong("green"))
    box(ax, bx, by, side, thin, "", "green", rounding=0.02)
    write(ax, bx + side + 0.1, by + thin / 2, "B", size=12, weight="bold",
          color=strong("green"), ha="left")
    arrow(ax, (wx + thin + 0.04, by + thin / 2), (bx - 0.04, by + thin / 2))
    write(ax, wx + thin + 0.27, by + thin + 0.14, f"x A\n(\u2026, {r})", size=9,
          color=strong("green"))
    tx = bx
    write(ax, tx, by - 0.3, f"B: {r} \u00d7 768 = {n_b:,} numbers, starts at 0",
          size=9.5, ha="left", color=strong("green"))
    write(ax, tx, ay + 1.3, f"A: 768 \u00d7 {r} = {n_a:,} numbers, random start", size=9.5,
          ha="left", color=strong("green"))
    write(ax, tx, ay + 0.75, "LoRA bypass: trained", size=10.5, ha="left", weight="bold",
          color=strong("green"))
    write(ax, tx, ay + 0.4, f"rank r = {r} (drawn wider than to scale)", size=9, ha="left",
          color=MUTED)
    # arrows
    arrow(ax, (1.45, 4.1), (wx - 0.05, 4.1))
    ax.plot([0.8, 0.8, 1.4], [3.8, 1.55, 1.55], color=INK, lw=1.5)
    arrow(ax, (1.4, 1.55), (wx - 0.05, 1.55))
    px, py = 6.7, 4.1
    ax.add_patch(plt.Circle((px, py), 0.24, facecolor="white", edgecolor=INK, lw=1.5))
    write(ax, px, py, "+", size=15, weight="bold")
    arrow(ax, (wx + side + 0.05, py), (px - 0.26, py))
    arrow(ax, (bx + side + 0.4, by + thin / 2), (px, py - 0.26), rad=0.35)
    write(ax, 6.3, 2.75, f"\u00d7 \u03b1 = {alpha}", size=10.5, ha="left")
    arrow(ax, (px + 0.26, py), (px + 0.8, py))
    write(ax, px + 0.9, py + 0.18, "x W + \u03b1 \u00b7 x A B", size=11.5, ha="left",
          weight="bold")
    write(ax, px + 0.9, py - 0.2, "(\u2026, 768)", size=9.5, ha="left", color=MUTED)
    write(ax, px + 0.9, 2.0, f"trained: {n_a + n_b:,}\n= {100 * (n_a + n_b) / n_w:.1f}% "
          "of W", size=10.5, ha="left", color=strong("green"))
    write(ax, 0.2, 5.65, f"LinearWithLoRA wrapping one 768 \u00d7 768 layer, rank {r}, "
          f"\u03b1 = {alpha} (the settings of Section 6.11).", size=9.5, ha="left",
          color=MUTED)
    return fig


def spam_splits():
    """The chapter's train, validation and test DataFrames, made with its own functions."""
    if "spam_splits" not in cache:
        import csv

        import pandas as pd

        from previous_chapters import create_balanced_dataset, random_split
        df = pd.read_csv(data_file("sms_spam_collection/SMSSpamCollection"), sep="\t",
                         header=None, names=["Label", "Text"], quoting=csv.QUOTE_NONE)
        balanced = create_balanced_dataset(df)
        balanced["Label"] = balanced["Label"].map({"ham": 0, "spam": 1})
        cache["spam_splits"] = random_split(balanced, 0.7, 0.1)
    return cache["spam_splits"]


def first_train_batch():
    """The first batch of the chapter's train_loader, checked against what its run printed."""
    import torch
    from torch.utils.data import DataLoader

    from previous_chapters import SpamDataset
    # the notebook writes the split to CSV and SpamDataset reads it back: the same round trip
    dataset = SpamDataset(io.StringIO(spam_splits()[0].to_csv(index=False)), tokenizer(),
                          context_length=1024)
    loader = DataLoader(dataset, batch_size=8, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(123))
    inputs, labels = next(iter(loader))
    printed = stored_output(NB, "7f185a13")
    assert f"torch.Size({list(inputs.shape)})" in printed and str(labels) in printed, printed
    return inputs, labels


def draw_ch06_pipeline():
    """The chapter's steps, with the sizes its stored run printed."""
    def find(cell, pattern):
        return re.search(pattern, stored_output(NB, cell)).groups()

    (n_all,) = find("4bd3b084", r"(\d+) messages")
    ham, spam = find("a32550c4", r"ham\s+(\d+)\s+spam\s+(\d+)")
    n_train, n_val, n_test = find("94cdff93", r"train: (\d+) validation: (\d+) test: (\d+)")
    b_train, b_val, b_test = find("cba1f902", r"(\d+) training.*\n(\d+) validation.*\n(\d+) test")
    (max_len,) = find("fabb3835", r"max_length: (\d+)")
    (trainable,) = find("f1345819", r"trainable parameters: ([\d,]+)")
    (epochs_seen,) = find("62913008", r"examples seen: (\d+)")
    (accuracy,) = find("99dcd0cb", r"accuracy: ([\d.]+%)")
    return digraph(f"""
  download [label="download\\nSMS Spam Collection\\n{n_all} messages\\n({ham} ham, {spam} spam)"];
  balance [label="balance\\n{spam} ham + {spam} spam\\nham = 0, spam = 1"];
  split [label="random_split\\n70 / 10 / 20 %\\n{n_train} / {n_val} / {n_test}"];
  data [label="SpamDataset\\ntoken IDs padded\\nwith 50256 to {max_len}"];
  loaders [label="DataLoader\\nbatches of 8\\n{b_train} / {b_val} / {b_test}"];
  gpt [label="GPTModel\\nGPT-2 small weights", {fill("teal")}];
  head [label="add_classification_head\\nnew 2-class out_head\\n{trainable} trainable", {fill("orange")}];
  train [label="train\\ncross-entropy on the\\nlast token, AdamW\\n{epochs_seen} examples seen", {fill("green")}];
  evaluate [label="evaluate on test set\\naccuracy {accuracy}\\nprecision, recall, F1", {fill("purple")}];
  download -> balance -> split -> data -> loaders -> train -> evaluate;
  gpt -> head -> train;
  {{rank=same; data; gpt}}
""", rankdir="LR", ranksep=0.3)


def draw_ch06_padding():
    """The first training batch: real tokens, padding, and the position the classifier reads."""
    inputs, labels = first_train_batch()
    tok = tokenizer()
    pad = 50256
    rows, width = inputs.shape
    lengths = [int((row != pad).nonzero().max()) + 1 for row in inputs]
    fig, ax = canvas(9.8, 5.5)
    x0, cell, rh = 1.9, 7.4 / width, 0.3
    top = 4.9
    write(ax, 0.1, 5.3, f"the first training batch: {rows} messages \u00d7 {width} token IDs",
          size=10.5, ha="left", weight="bold")
    for j in range(0, width, 20):
        write(ax, x0 + (j + 0.5) * cell, top + 0.1, str(j), size=9, color=MUTED, va="bottom")
    write(ax, x0 + (width - 0.5) * cell, top + 0.1, str(width - 1), size=9,
          color=strong("green"), va="bottom", weight="bold")
    for i in range(rows):
        y = top - (i + 1) * rh
        for j in range(width):
            if j == width - 1:
                face = strong("green")
            elif j == lengths[i] - 1:
                face = strong("orange")
            else:
                face = light("blue") if j < lengths[i] else light("grey")
            ax.add_patch(Rectangle((x0 + j * cell, y + 0.03), cell, rh - 0.06, facecolor=face,
                                   edgecolor="white", lw=0.3))
        write(ax, x0 - 0.1, y + rh / 2, f"{['not spam', 'spam'][int(labels[i])]}, "
              f"{lengths[i]} tokens", size=9, ha="right")
    # zoom on the shortest message
    k = min(range(rows), key=lambda i: lengths[i])
    n = lengths[k]
    cols = list(range(n + 3)) + [None, width - 1]
    zy, zc = top - rows * rh - 1.05, 0.64
    write(ax, 0.1, zy + 0.75, f"the shortest one, written out (message {k + 1} of the batch)",
          size=10.5, ha="left", weight="bold")
    for c, j in enumerate(cols):
        zx = 0.25 + c * zc
        if j is None:
            write(ax, zx + zc / 2, zy + 0.25, "\u2026", size=12, color=MUTED)
            continue
        tid = int(inputs[k, j])
        face = (strong("green") if j == width - 1 else strong("orange") if j == n - 1
                else light("blue") if j < n else light("grey"))
        dark = j in (n - 1, width - 1)
        ax.add_patch(Rectangle((zx, zy), zc - 0.04, 0.5, facecolor=face, edgecolor="white"))
        piece = "<eot>" if tid == pad else show_token(tok.decode([tid]))
        write(ax, zx + zc / 2 - 0.02, zy + 0.33, piece[:7], size=9, family=MONO,
              color="white" if dark else INK)
        write(ax, zx + zc / 2 - 0.02, zy + 0.13, str(tid), size=9,
              family=MONO, color="white" if dark else MUTED)
        write(ax, zx + zc / 2 - 0.02, zy - 0.13, str(j), size=9, color=MUTED)
    legend = [(light("blue"), "token of the message"), (strong("orange"), "last real token"),
              (light("grey"), "padding: <|endoftext|>, ID 50256"),
              (strong("green"), "last position: outputs[:, -1, :] is read here")]
    for c, (face, label) in enumerate(legend):
        lx, ly = 0.25 + (c % 2) * 4.6, 0.8 - (c // 2) * 0.3
        ax.add_patch(Rectangle((lx, ly), 0.25, 0.2, facecolor=face, edgecolor=INK, lw=0.5))
        write(ax, lx + 0.35, ly + 0.1, label, size=9.5, ha="left")
    write(ax, 0.1, 0.12, "train_loader's first batch (seed 123), rebuilt with SpamDataset; its "
          "labels are those the stored run prints. One cell per token.", size=9,
          ha="left", color=MUTED)
    return fig


def draw_ch06_head_swap():
    """Section 6.5: the 50,257-way output layer replaced by a 2-way one."""
    old = re.search(r"in_features=(\d+), out_features=(\d+)", stored_output(NB, "71bf894b"))
    new = re.search(r"in_features=(\d+), out_features=(\d+)", stored_output(NB, "f1345819"))
    d, v = map(int, old.groups())
    _, c = map(int, new.groups())
    return digraph(f"""
  hidden [label="final LayerNorm output\\none {d}-number vector per token", {fill("teal")}];
  old [label="old out_head: Linear({d} \u2192 {v:,}), no bias\\n{d * v:,} weights",
       {fill("grey")}, style="rounded,filled,dashed"];
  new [label="new out_head: Linear({d} \u2192 {c})\\n{d * c + c:,} weights and biases, random start", {fill("orange")}];
  vocab [label="{v:,} next-token logits\\none per vocabulary token", {fill("grey")}, style="rounded,filled,dashed"];
  classes [label="{c} class scores\\nnot spam (0), spam (1)", {fill("green")}];
  hidden -> old [style=dashed, color="{MUTED}", label=" before"];
  old -> vocab [style=dashed, color="{MUTED}"];
  hidden -> new [label=" now"];
  new -> classes;
""", rankdir="LR", ranksep=0.45)


def draw_ch06_frozen_features():
    """Section 6.7: the frozen layers run once, the trainable top in every epoch."""
    from previous_chapters import gpt2_config
    n_layers = gpt2_config("gpt2-small (124M)")["n_layers"]
    (seconds,) = re.search(r"features: (\d+) s", stored_output(NB, "62913008")).groups()
    (max_len,) = re.search(r"max_length: (\d+)", stored_output(NB, "fabb3835")).groups()
    return digraph(f"""
  subgraph cluster_once {{
    label="once: frozen_features ({seconds} s in the stored run)"; fontcolor="{MUTED}";
    style=dashed; color="{MUTED}";
    ids [label="token IDs\\n(batch, {max_len})"];
    frozen [label="embeddings + blocks 1 to {n_layers - 1}\\nfrozen, eval mode, no gradients", {fill("grey")}];
    feats [label="hidden states, kept\\n(batch, {max_len}, 768)", {fill("purple")}];
  }}
  subgraph cluster_epochs {{
    label="every step of every epoch: TrainableTop"; fontcolor="{strong("green")}";
    style=dashed; color="{strong("green")}";
    top [label="block {n_layers} \u2192 final norm\\n\u2192 2-class head", {fill("green")}];
    loss [label="loss on the last token\\nbackward, AdamW step", {fill("orange")}];
  }}
  ids -> frozen -> feats -> top -> loss;
  loss -> top [label=" next batch", style=dashed, constraint=false];
""", rankdir="LR")


def stored_confusion():
    """TP, FP, FN, TN of the stored test run: the only counts that give its printed metrics
    on this test set (whose spam count the split gives)."""
    printed = stored_output(NB, "99dcd0cb")
    metric = {k: v for k, v in re.findall(r"(\w+): ([\d.]+)%", printed)}
    test = spam_splits()[2]
    n, pos = len(test), int(test["Label"].sum())
    found = [(tp, fp) for tp in range(pos + 1) for fp in range(n - pos + 1)
             if tp + fp and f"{100 * tp / pos:.2f}" == metric["recall"]
             and f"{100 * tp / (tp + fp):.2f}" == metric["precision"]
             and f"{100 * (n - pos - fp + tp) / n:.2f}" == metric["accuracy"]]
    assert len(found) == 1, found
    tp, fp = found[0]
    return {"tp": tp, "fp": fp, "fn": pos - tp, "tn": n - pos - fp, "n": n, **metric}


def draw_ch06_confusion():
    m = stored_confusion()
    fig, ax = canvas(9.8, 4.6)
    x0, top, w, h = 1.9, 3.85, 2.3, 1.55
    cells = [[("tn", "TN: true negative", "real message,\nkept in the inbox", "green"),
              ("fp", "FP: false positive", "real message sent to\nthe spam folder", "red")],
             [("fn", "FN: false negative", "spam that slipped\nthrough", "red"),
              ("tp", "TP: true positive", "spam caught", "green")]]
    write(ax, x0 + w, top + 0.55, "predicted", size=10.5, weight="bold")
    for j, name in enumerate(["not spam", "spam"]):
        write(ax, x0 + (j + 0.5) * w, top + 0.22, name, size=10)
    write(ax, 0.25, top - h, "actual", size=10.5, weight="bold", rotation=90)
    for i, name in enumerate(["not spam", "spam"]):
        write(ax, x0 - 0.12, top - (i + 0.5) * h, name, size=10, ha="right")
        for j in range(2):
            key, title, meaning, color = cells[i][j]
            x, y = x0 + j * w, top - (i + 1) * h
            box(ax, x + 0.05, y + 0.05, w - 0.1, h - 0.1, "", color, rounding=0.05)
            write(ax, x + w / 2, y + h - 0.3, title, size=10, weight="bold", color=strong(color))
            write(ax, x + w / 2, y + h / 2 - 0.02, str(m[key]), size=17, weight="bold")
            write(ax, x + w / 2, y + 0.35, meaning, size=9.5, color=INK)
    tx = x0 + 2 * w + 0.35
    lines = [("precision", "TP / (TP + FP)", f"{m['tp']} / {m['tp'] + m['fp']}",
              m["precision"], "of the flagged messages, how many are spam"),
             ("recall", "TP / (TP + FN)", f"{m['tp']} / {m['tp'] + m['fn']}", m["recall"],
              "of the spam, how much got flagged"),
             ("accuracy", "(TP + TN) / all", f"{m['tp'] + m['tn']} / {m['n']}", m["accuracy"],
              "right answers, both classes")]
    for k, (name, formula, counts, value, meaning) in enumerate(lines):
        y = top - 0.25 - k * 1.0
        write(ax, tx, y, f"{name} = {formula}", size=10.5, ha="left", weight="bold")
        write(ax, tx, y - 0.3, f"= {counts} = {value}%", size=10, ha="left", family=MONO)
        write(ax, tx, y - 0.58, meaning, size=9.5, ha="left", color=MUTED)
    write(ax, 0.1, 0.15, f"The {m['n']} test messages of the stored run, spam the positive "
          "class: the counts are the only ones that give its printed accuracy, precision and "
          "recall.", size=9, ha="left", color=MUTED)
    return fig


FIGURES = [
    Figure("ch06_pipeline", NB, "893e6725",
           "The chapter in one line: the data path on top, the model path below, meeting in "
           "training; each box gives the size the stored run printed at that step.",
           "A flow from downloading the SMS Spam Collection through balancing, the 70/10/20 "
           "split, SpamDataset and the data loaders to training and evaluation, with GPT-2 "
           "and its new 2-class head joining at training.", draw_ch06_pipeline,
           "Counts from the stored outputs of the cells that print them."),
    Figure("ch06_padding", NB, "56e50bf6",
           "Every message is padded with 50256 to the same 120 tokens; the classifier reads "
           "the output of the last position, which for a short message is padding that has "
           "seen the whole message.",
           "Eight rows of 120 cells, one per token of the first training batch: message tokens "
           "in blue ending in an orange last real token, grey padding, the last column green; "
           "below, the shortest message written out with its token IDs.", draw_ch06_padding,
           "The first batch of train_loader, rebuilt with the chapter's code; its labels match "
           "the stored output."),
    Figure("ch06_head_swap", NB, "7bca0048",
           "The only change to the architecture: the head that scored 50,257 tokens is "
           "replaced by one that scores 2 classes.",
           "The final LayerNorm output feeds, before, the old 768 to 50,257 output head "
           "(dashed, removed) and, now, a new 768 to 2 head giving the not spam and spam "
           "scores.", draw_ch06_head_swap,
           "Layer sizes from the stored outputs of print(model.out_head) before and after."),
    Figure("ch06_last_token", "ch06_classification.ipynb", "9b9c5b8c",
           "Under the causal mask only the last token sees the whole message, so the "
           "classifier reads its output row alone.",
           "A 4 by 4 causal mask for Do you have time, the last row highlighted; the model's "
           "four output rows of two class scores, of which only the last is used.",
           draw_ch06_last_token,
           "The last row's scores are those the stored run prints in the cell below."),
    Figure("ch06_trainable", "ch06_classification.ipynb", "3f44ad79",
           "Only the last transformer block, the final norm and the new 2-class head are "
           "trained; everything else stays frozen.",
           "The GPT-2 small stack with embeddings and blocks 1 to 11 frozen, block 12, the "
           "final LayerNorm and the new output head trainable, with parameter counts.",
           draw_ch06_trainable,
           "Parameter counts of GPT-2 small after add_classification_head."),
    Figure("ch06_lora", "ch06_classification.ipynb", "a959e370",
           "LoRA keeps W frozen and learns a thin bypass A\u00b7B beside it; with B = 0 at the "
           "start the layer begins exactly as the pretrained one.",
           "Input x goes through the frozen 768 by 768 weight W and, in parallel, through the "
           "thin matrices A (768 by 16) and B (16 by 768) scaled by alpha; the two results "
           "are added.", draw_ch06_lora,
           "Sizes from LinearWithLoRA on a 768 \u00d7 768 layer with rank 16."),
    Figure("ch06_frozen_features", NB, "6464aaf4",
           "The frozen layers give the same hidden states in every epoch, so they run once; "
           "only the trainable top runs in every step.",
           "The token IDs go once through the embeddings and frozen blocks 1 to 11 into stored "
           "hidden states; in every step of every epoch these feed block 12, the final norm "
           "and the head, then the loss and an AdamW step.", draw_ch06_frozen_features,
           "The time is the stored run's (features of all three data sets)."),
    Figure("ch06_confusion", NB, "1839ce41",
           "Read the matrix by rows: the diagonal holds the right answers, FP is a real "
           "message lost to the spam folder, FN is spam let through; precision and recall each "
           "look at one kind of mistake.",
           "A 2 by 2 confusion matrix of the test set with true negatives, false positives, "
           "false negatives and true positives, their meaning for spam, and precision, "
           "recall and accuracy computed from them.", draw_ch06_confusion,
           "Counts of the stored run's 300 test messages, from its printed metrics."),
]
