"""The grader's private parts of the exercise checks: never handed out (tools/handout.py
copies only the modules it lists, and a test keeps this file off that list).

Each part takes a random.Random, drawn by the grader from its seed, and the learner's
answer; it draws inputs of its own (sizes, texts, seeds) that the public checks in
exercise_checks.py do not show, and raises NotYet with a hint when the answer is wrong.
Every part is worth one point, on top of the public check's parts.

Add a part with @private("chNN_exM", "what it checks") on a function (rng, *answer).
"""

import functools
import string

import torch
import torch.nn as nn

import exercise_checks as ec
import previous_chapters as pc
from exercise_checks import NotYet, need

# exercise id -> [(part name, function(rng, *answer))], in order.
PRIVATE_PARTS = {}


def private(exercise_id, name):
    def register(function):
        PRIVATE_PARTS.setdefault(exercise_id, []).append((f"private: {name}", function))
        return function
    return register


def extra_parts(exercise_id, rng):
    """[(name, function(*answer))]: the private parts of one exercise, bound to rng."""
    return [(name, functools.partial(function, rng)) for name, function in PRIVATE_PARTS.get(exercise_id, [])]


def seed_torch(rng):
    torch.manual_seed(rng.randrange(2**31))


def made_up_word(rng):
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(4, 12)))


def sample_text(rng, words=60):
    vocabulary = ec.SAMPLE_TEXT.split()
    return " ".join(rng.choice(vocabulary) for _ in range(words))


# ---------------------------------------------------------------------------
# Chapter 2
# ---------------------------------------------------------------------------

@private("ch02_ex1", "made-up words")
def _ch02_ex1(rng, bpe_pieces):
    tokenizer = ec.gpt2_tokenizer()
    for _ in range(5):
        text = " ".join(made_up_word(rng) for _ in range(rng.randint(1, 3)))
        expected = [tokenizer.decode([token_id]) for token_id in tokenizer.encode(text)]
        need(list(bpe_pieces(text)) == expected, "on other made-up words the pieces are not GPT-2's.")


@private("ch02_ex2", "other lengths, strides and texts")
def _ch02_ex2(rng, make_loader):
    text = sample_text(rng, 80)
    max_length, stride, batch_size = rng.randint(2, 9), rng.randint(1, 9), rng.randint(1, 6)
    got = list(make_loader(text, max_length=max_length, stride=stride, batch_size=batch_size))
    want = list(pc.create_dataloader_v1(text, batch_size=batch_size, max_length=max_length,
                                        stride=stride, shuffle=False, drop_last=False))
    need(len(got) == len(want), "on another text and sizes the number of batches is off.")
    for (inputs, targets), (want_inputs, want_targets) in zip(got, want):
        need(torch.equal(inputs, want_inputs) and torch.equal(targets, want_targets),
             "on another text and sizes some inputs or targets differ.")


@private("ch02_ex3", "other lengths and strides")
def _ch02_ex3(rng, overlap):
    for _ in range(20):
        max_length, stride = rng.randint(1, 500), rng.randint(1, 500)
        need(int(overlap(max_length, stride)) == max(max_length - stride, 0),
             "wrong count for some other max_length and stride.")


# ---------------------------------------------------------------------------
# Chapter 3
# ---------------------------------------------------------------------------

@private("ch03_ex1", "other sizes")
def _ch03_ex1(rng, copy_weights):
    d_in, d_out = rng.randint(2, 9), rng.randint(1, 9)
    seed_torch(rng)
    sa_v1, sa_v2 = ec.SelfAttention_v1(d_in, d_out), ec.SelfAttention_v2(d_in, d_out)
    copy_weights(sa_v2, sa_v1)
    x = torch.randn(rng.randint(2, 8), d_in)
    with torch.no_grad():
        need(ec.close(ec.SelfAttention_v1.forward(sa_v1, x), sa_v2(x)),
             "with other sizes, SelfAttention_v1's own computation does not match after the copy.")


@private("ch03_ex2", "other inputs, in training mode")
def _ch03_ex2(rng, mha_2d):
    seed_torch(rng)
    x = torch.randn(rng.randint(1, 4), rng.randint(1, 6), 3)
    mha_2d.train()
    with torch.no_grad():
        out = mha_2d(x)
        mha_2d.eval()
        need(ec.close(out, mha_2d(x)), "in training mode the output changes: the task asks for no dropout.")


@private("ch03_ex3", "other modules")
def _ch03_ex3(rng, mha_gpt2, count_parameters):
    for _ in range(3):
        module = nn.Sequential(nn.Linear(rng.randint(1, 20), 7, bias=rng.random() < 0.5), nn.Linear(7, rng.randint(1, 9)))
        module[1].bias.requires_grad_(False)
        need(int(count_parameters(module)) == ec.count_of(module), "wrong count for some other module.")


# ---------------------------------------------------------------------------
# Chapter 4
# ---------------------------------------------------------------------------

def random_config(rng, **changes):
    heads = rng.randint(1, 4)
    return ec.tiny_config(emb_dim=heads * rng.randint(2, 6), n_heads=heads, n_layers=rng.randint(1, 3),
                          vocab_size=rng.randint(20, 90), context_length=rng.randint(6, 20),
                          qkv_bias=rng.random() < 0.5, **changes)


@private("ch04_ex1", "other configurations")
def _ch04_ex1(rng, block_param_counts):
    config = random_config(rng)
    block = pc.TransformerBlock(config)
    counts = block_param_counts(config)
    need(int(counts["feed_forward"]) == ec.count_of(block.ff) and int(counts["attention"]) == ec.count_of(block.att),
         "the counts are off for some other configuration.")


@private("ch04_ex2", "other configurations")
def _ch04_ex2(rng, gpt2_configs, count_gpt_params):
    config = random_config(rng)
    need(int(count_gpt_params(config)) == ec.count_of(pc.GPTModel(config)),
         "`count_gpt_params` is off for some other configuration.")


@private("ch04_ex3", "other rates")
def _ch04_ex3(rng, model_class):
    rates = {key: round(rng.uniform(0.05, 0.6), 2) for key in ["drop_rate_emb", "drop_rate_attn", "drop_rate_shortcut"]}
    config = {key: value for key, value in ec.tiny_config(**rates).items() if key != "drop_rate"}
    model = model_class(config)
    need(model.drop_emb.p == rates["drop_rate_emb"]
         and all(b.att.dropout.p == rates["drop_rate_attn"] and b.drop_shortcut.p == rates["drop_rate_shortcut"]
                 for b in model.trf_blocks), "with other rates some dropout layer uses the wrong one.")


# ---------------------------------------------------------------------------
# Chapter 5
# ---------------------------------------------------------------------------

@private("ch05_ex1", "other logits and temperatures")
def _ch05_ex1(rng, softmax_with_temperature):
    seed_torch(rng)
    logits, temperature = torch.randn(rng.randint(1, 3), rng.randint(2, 12)) * 4, rng.uniform(0.05, 8)
    need(ec.close(softmax_with_temperature(logits.clone(), temperature), torch.softmax(logits / temperature, -1)),
         "wrong probabilities for some other logits and temperature.")


@private("ch05_ex2", "other seeds")
def _ch05_ex2(rng, deterministic_kwargs, generate_reproducibly):
    model, idx = ec.tiny_generation_model()
    seed = rng.randrange(10**6)
    got = generate_reproducibly(model, idx, 8, 16, seed=seed)
    torch.manual_seed(seed)
    need(torch.equal(got, pc.generate(model, idx, 8, 16, temperature=1.0, top_k=5)),
         "for some other seed the text is not what sampling with temperature 1.0 and top-k 5 gives from that seed.")


@private("ch05_ex3", "other splits")
def _ch05_ex3(rng, train_val_losses):
    text, context_length, ratio = sample_text(rng, 90), rng.choice([4, 8, 12]), rng.uniform(0.5, 0.85)
    seed_torch(rng)
    model = pc.GPTModel(ec.tiny_config(vocab_size=50257, context_length=context_length, n_layers=1, drop_rate=0.3))
    got = [float(loss) for loss in train_val_losses(model, text, context_length, ratio)]
    model.eval()
    expected = ec.reference_losses(model, text, context_length, ratio)
    need(all(abs(g - e) < 1e-4 for g, e in zip(got, expected)), "the losses are off for some other text and split.")


@private("ch05_ex4", "other settings of the optimizer")
def _ch05_ex4(rng, save_training_state, load_training_state):
    ec.resume_matches(save_training_state, load_training_state, lr=rng.uniform(1e-4, 1e-2),
                      weight_decay=rng.uniform(0.0, 0.3), seed=rng.randrange(10**6))


# ---------------------------------------------------------------------------
# Chapter 6
# ---------------------------------------------------------------------------

@private("ch06_ex1", "other batches")
def _ch06_ex1(rng, calc_loss_first_token):
    model = ec.tiny_classifier(rng.randrange(1000)).eval()
    seed_torch(rng)
    size, length = rng.randint(1, 6), rng.randint(2, 14)
    inputs, labels = torch.randint(0, 60, (size, length)), torch.randint(0, 2, (size,))
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(inputs)[:, 0, :], labels)
    need(torch.allclose(calc_loss_first_token(inputs, labels, model, "cpu").detach(), expected, atol=1e-5),
         "the loss is off for some other batch.")


@private("ch06_ex2", "other models")
def _ch06_ex2(rng, set_trainable, count_trainable):
    model = ec.tiny_classifier(rng.randrange(1000), n_layers=rng.randint(1, 4))
    set_trainable(model, "last_block")
    expected = ec.count_of(model.trf_blocks[-1]) + ec.count_of(model.final_norm) + ec.count_of(model.out_head)
    need(int(count_trainable(model)) == expected, "with 'last_block' the count is off for some other model.")


@private("ch06_ex3", "other messages and contexts")
def _ch06_ex3(rng, make_padded_dataset):
    texts = [" ".join(made_up_word(rng) for _ in range(rng.randint(1, 30))) for _ in range(3)]
    context_length = rng.randint(5, 40)
    ec.padded_dataset_matches(make_padded_dataset, texts, context_length)


# ---------------------------------------------------------------------------
# Chapter 7
# ---------------------------------------------------------------------------

def random_entry(rng):
    return {"instruction": made_up_word(rng) + " " + made_up_word(rng) + ".",
            "input": rng.choice(["", " ", made_up_word(rng)]), "output": made_up_word(rng)}


@private("ch07_ex1", "other entries")
def _ch07_ex1(rng, format_input_phi3, format_example_phi3):
    for _ in range(4):
        entry = random_entry(rng)
        prompt = "<|user|>\n" + entry["instruction"] + ("\n" + entry["input"] if entry["input"].strip() else "")
        need(format_input_phi3(dict(entry)) == prompt
             and format_example_phi3(dict(entry)) == prompt + "\n<|assistant|>\n" + entry["output"],
             "some other entry is formatted differently.")


@private("ch07_ex2", "other batches")
def _ch07_ex2(rng, collate_masked):
    batch = []
    for _ in range(rng.randint(1, 4)):
        length = rng.randint(2, 9)
        batch.append(([rng.randrange(1000) for _ in range(length)], rng.randint(1, length - 1)))
    got = ec.collate_without_shortcut(collate_masked, batch)
    want = ec.masked_targets(batch)
    need(torch.equal(got[1], want), "the targets are off for some other batch.")


@private("ch07_ex3", "other ranks")
def _ch07_ex3(rng, add_lora):
    model = ec.tiny_model(rng.randrange(1000))
    shapes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    rank = rng.randint(1, 6)
    model = add_lora(model, rank, rng.choice([1, 4, 16])) or model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable != sum(rank * (i + o) for i, o in shapes):
        raise NotYet("with another rank the number of trainable parameters is off.")
