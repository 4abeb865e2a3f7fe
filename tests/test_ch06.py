"""Chapter 6: data preparation, the classifier, its checkpoint and LoRA."""

import csv
import math

import pandas as pd
import pytest
import tiktoken
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from previous_chapters import (GPTModel, LinearWithLoRA, LoRALayer, SpamDataset,
                               add_classification_head, calc_accuracy_loader,
                               calc_classifier_loss_loader, classifier_metrics,
                               classify_review, create_balanced_dataset,
                               download_and_unzip_spam_data, load_classifier_checkpoint,
                               random_split, replace_linear_with_lora, save_gpt_checkpoint,
                               spam_probability)
from tiny_models import TINY_GPT2_VOCAB

# GPT-2's vocabulary, so the real tokenizer can feed it. The counts below are for 2 blocks of
# emb_dim 8 with q/k/v biases, and the messages are cut at a context of 8.
TINY = {**TINY_GPT2_VOCAB, "context_length": 8, "emb_dim": 8, "n_layers": 2, "qkv_bias": True}


@pytest.fixture(scope="module")
def tokenizer():
    return tiktoken.get_encoding("gpt2")


def tiny_classifier(bias):
    """A tiny classifier whose head ignores its input: the scores are always `bias`."""
    torch.manual_seed(123)
    model = add_classification_head(GPTModel(TINY), num_classes=2)
    with torch.no_grad():
        model.out_head.weight.zero_()
        model.out_head.bias.copy_(torch.tensor(bias))
    return model.eval()


# --- the data ---------------------------------------------------------------

@pytest.mark.needs_data
def test_balanced_set_and_split_of_the_real_data(tmp_path, monkeypatch):
    data_file = download_and_unzip_spam_data(tmp_path)
    assert data_file == tmp_path / "SMSSpamCollection"

    df = pd.read_csv(data_file, sep="\t", header=None, names=["Label", "Text"],
                     quoting=csv.QUOTE_NONE)
    assert len(df) == 5574
    assert df["Label"].value_counts().to_dict() == {"ham": 4827, "spam": 747}

    balanced = create_balanced_dataset(df)
    assert balanced["Label"].value_counts().to_dict() == {"ham": 747, "spam": 747}
    assert balanced.index.is_unique  # no message drawn twice
    assert create_balanced_dataset(df).equals(balanced)  # seeded

    train, validation, test = random_split(balanced, 0.7, 0.1)
    assert (len(train), len(validation), len(test)) == (1045, 149, 300)
    together = pd.concat([train, validation, test])
    assert sorted(together["Text"]) == sorted(balanced["Text"])  # a partition
    assert random_split(balanced, 0.7, 0.1)[0].equals(train)  # seeded

    # Once the file is there, nothing is downloaded again.
    monkeypatch.setenv("LLM_COURSE_MIRROR", "http://127.0.0.1:9")  # nothing listens there
    assert download_and_unzip_spam_data(tmp_path) == data_file


class WordTokenizer:
    """Encodes each word as its length: easy to predict by eye."""

    def encode(self, text):
        return [len(word) for word in text.split()]


def write_csv(path, rows):
    pd.DataFrame(rows, columns=["Label", "Text"]).to_csv(path, index=False)
    return path


def test_spam_dataset_pads_to_the_longest_message(tmp_path):
    csv_file = write_csv(tmp_path / "d.csv", [(0, "a bb"), (1, "ccc dddd eeeee"), (0, "f")])
    dataset = SpamDataset(csv_file, WordTokenizer())
    assert dataset.max_length == 3
    assert len(dataset) == 3
    inputs, label = dataset[0]
    assert inputs.tolist() == [1, 2, 50256] and label.item() == 0
    assert inputs.dtype == torch.long and label.dtype == torch.long
    assert dataset[1][0].tolist() == [3, 4, 5] and dataset[1][1].item() == 1
    assert dataset[2][0].tolist() == [1, 50256, 50256]


def test_spam_dataset_truncates_and_checks_the_context_length(tmp_path):
    csv_file = write_csv(tmp_path / "d.csv", [(1, "a bb ccc dddd eeeee"), (0, "f")])
    dataset = SpamDataset(csv_file, WordTokenizer(), max_length=2, pad_token_id=0)
    assert [dataset[i][0].tolist() for i in range(2)] == [[1, 2], [1, 0]]

    # No max_length: the longest message, but never beyond the context length.
    assert SpamDataset(csv_file, WordTokenizer(), context_length=4).max_length == 4
    assert SpamDataset(csv_file, WordTokenizer(), max_length=4, context_length=4).max_length == 4
    with pytest.raises(ValueError, match="context_length=4"):
        SpamDataset(csv_file, WordTokenizer(), max_length=5, context_length=4)


# --- the classifier -------------------------------------------------------------

def test_only_the_last_block_final_norm_and_new_head_train():
    torch.manual_seed(123)
    model = add_classification_head(GPTModel(TINY), num_classes=3)
    assert model.out_head.weight.shape == (3, 8) and model.out_head.bias.shape == (3,)

    d = TINY["emb_dim"]
    block = (3 * (d * d + d)          # query, key, value with biases
             + (d * d + d)            # attention output projection
             + (d * 4 * d + 4 * d)    # feed-forward expansion
             + (4 * d * d + d)        # feed-forward projection
             + 2 * 2 * d)             # norm1, norm2: scale and shift
    assert block == 872
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == 872 + 2 * d + (d * 3 + 3) == 915
    assert not any(p.requires_grad for p in model.trf_blocks[0].parameters())
    assert not model.tok_emb.weight.requires_grad and not model.pos_emb.weight.requires_grad


def test_accuracy_and_loss_from_the_last_token():
    model = tiny_classifier(bias=[0.0, 1.0])  # always predicts class 1, p = e / (1 + e)
    inputs = torch.randint(0, 50257, (6, 5))
    labels = torch.tensor([1, 0, 1, 1, 0, 1])
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=4)
    assert calc_accuracy_loader(loader, model, "cpu") == pytest.approx(4 / 6)
    assert calc_accuracy_loader(loader, model, "cpu", num_batches=1) == pytest.approx(3 / 4)

    right, wrong = math.log(1 + math.e) - 1, math.log(1 + math.e)  # -log p(label)
    batch_1 = (3 * right + wrong) / 4
    batch_2 = (right + wrong) / 2
    with torch.no_grad():
        loss = calc_classifier_loss_loader(loader, model, "cpu")
    assert loss == pytest.approx((batch_1 + batch_2) / 2, rel=1e-5)


@pytest.mark.parametrize("measure", [calc_accuracy_loader, calc_classifier_loss_loader])
def test_classifier_evaluations_refuse_an_empty_loader_like_calc_loss_loader(measure):
    model = tiny_classifier(bias=[0.0, 1.0])
    three = TensorDataset(torch.randint(0, 50257, (3, 5)), torch.tensor([1, 0, 1]))
    empty = DataLoader(three, batch_size=4, drop_last=True)
    assert len(empty) == 0
    with pytest.raises(ValueError, match="no batches"):
        measure(empty, model, "cpu")
    with pytest.raises(ValueError, match="num_batches must be at least 1"):
        measure(DataLoader(three, batch_size=2), model, "cpu", num_batches=0)


def test_classifier_metrics():
    predictions = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1])
    labels = torch.tensor([1, 1, 0, 1, 0, 0, 0, 0])
    metrics = classifier_metrics(predictions, labels)
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"]) == (2, 2, 1, 3)
    assert metrics["accuracy"] == pytest.approx(5 / 8)
    assert metrics["precision"] == pytest.approx(2 / 4)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    nothing_flagged = classifier_metrics(torch.zeros(3, dtype=torch.long), torch.tensor([1, 0, 0]))
    assert nothing_flagged["precision"] == 0.0 and nothing_flagged["f1"] == 0.0


@pytest.mark.needs_data
def test_classify_review_follows_the_head(tokenizer):
    spam_model = tiny_classifier(bias=[0.0, 1.0])
    ham_model = tiny_classifier(bias=[1.0, 0.0])
    text = "Congratulations, you won a free cruise! Reply YES to claim it now."  # > 8 tokens
    assert classify_review(text, spam_model, tokenizer, "cpu") == "spam"
    assert classify_review(text, ham_model, tokenizer, "cpu") == "not spam"
    assert classify_review("hi", spam_model, tokenizer, "cpu", max_length=6) == "spam"
    assert spam_probability(text, spam_model, tokenizer, "cpu") == pytest.approx(
        math.e / (1 + math.e), rel=1e-5)
    # max_length beyond the context length is cut to the context length, not an error.
    assert classify_review(text, ham_model, tokenizer, "cpu", max_length=100) == "not spam"
    with pytest.raises(ValueError, match="empty"):
        classify_review("", spam_model, tokenizer, "cpu")


@pytest.mark.needs_data
def test_classifier_checkpoint_round_trip(tmp_path, tokenizer):
    model = tiny_classifier(bias=[0.3, -0.2])
    config = {**TINY, "num_classes": 2, "max_length": 6}
    path = tmp_path / "classifier.pth"
    save_gpt_checkpoint(path, model, config)

    loaded, checkpoint = load_classifier_checkpoint(path)
    assert checkpoint["config"] == config
    inputs = torch.tensor([tokenizer.encode("See you at eight")])
    with torch.no_grad():
        assert torch.equal(loaded(inputs), model(inputs))

    language_model = GPTModel(TINY)
    save_gpt_checkpoint(tmp_path / "lm.pth", language_model, TINY)
    with pytest.raises(ValueError, match="lm.pth holds a language model"):
        load_classifier_checkpoint(tmp_path / "lm.pth")
    save_gpt_checkpoint(tmp_path / "wrong.pth", model, {**config, "emb_dim": 16})
    with pytest.raises(ValueError, match="wrong.pth do not fit"):
        load_classifier_checkpoint(tmp_path / "wrong.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_classifier_checkpoint(tmp_path / "missing.pth")


def test_a_classifier_saved_with_the_books_mask_buffers_loads(tmp_path, capsys):
    model = tiny_classifier(bias=[0.3, -0.2])
    config = {**TINY, "num_classes": 2, "max_length": 6}
    state_dict = dict(model.state_dict())
    for i in range(TINY["n_layers"]):  # the book's GPTModel saves each block's causal mask
        state_dict[f"trf_blocks.{i}.att.mask"] = torch.triu(torch.ones(8, 8), diagonal=1)
    path = tmp_path / "book_classifier.pth"
    torch.save({"config": config, "model_state_dict": state_dict}, path)

    loaded, _ = load_classifier_checkpoint(path)

    assert "causal-mask buffers" in capsys.readouterr().out
    inputs = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert torch.equal(loaded(inputs), model(inputs))


# --- LoRA -------------------------------------------------------------------------

def test_lora_layer_starts_at_zero_and_scales_by_alpha():
    torch.manual_seed(123)
    linear = nn.Linear(7, 5)
    wrapped = LinearWithLoRA(linear, rank=3, alpha=4)
    assert sum(p.numel() for p in wrapped.lora.parameters()) == 3 * (7 + 5)
    assert wrapped.lora.A.shape == (7, 3) and wrapped.lora.B.shape == (3, 5)
    assert torch.count_nonzero(wrapped.lora.B) == 0 and torch.count_nonzero(wrapped.lora.A) == 21

    x = torch.randn(2, 7)
    assert torch.equal(wrapped(x), linear(x))
    with torch.no_grad():
        wrapped.lora.B.fill_(0.5)
    expected = linear(x) + 4 * (x @ wrapped.lora.A @ wrapped.lora.B)
    assert torch.allclose(wrapped(x), expected, atol=1e-6)
    layer = LoRALayer(7, 5, rank=3, alpha=4)
    assert torch.equal(layer(x), torch.zeros(2, 5))


def test_lora_a_starts_scaled_like_a_linear_layers_weights():
    # nn.Linear draws its weights within +-1/sqrt(in_features); A, stored (in_dim, rank), must
    # take in_dim as its fan-in too, not the rank (which would make it sqrt(in_dim / rank) larger).
    torch.manual_seed(123)
    for in_dim in (768, 3072):
        a = LoRALayer(in_dim, 8, rank=16, alpha=16).A
        bound = 1 / math.sqrt(in_dim)
        assert a.abs().max() <= bound and a.abs().max() > 0.9 * bound


def test_replace_linear_with_lora_wraps_every_linear_layer():
    rank = 2
    model = tiny_classifier(bias=[0.1, 0.2])
    inputs = torch.randint(0, 50257, (2, 5))
    with torch.no_grad():
        before = model(inputs)
    for param in model.parameters():
        param.requires_grad = False

    linear_shapes = [(m.in_features, m.out_features) for m in model.modules()
                     if isinstance(m, nn.Linear)]
    assert len(linear_shapes) == 2 * 6 + 1  # 6 per block (q, k, v, out, 2 feed-forward) + head
    torch.manual_seed(123)
    assert replace_linear_with_lora(model, rank=rank, alpha=8) is model

    wrapped = [m for m in model.modules() if isinstance(m, LinearWithLoRA)]
    assert len(wrapped) == 13
    assert isinstance(model.out_head, LinearWithLoRA)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == sum(rank * (i + o) for i, o in linear_shapes) == 2 * (
        2 * (4 * (8 + 8) + (8 + 32) + (32 + 8)) + (8 + 2))
    with torch.no_grad():
        assert torch.equal(model(inputs), before)
