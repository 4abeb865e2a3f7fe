"""What the chapters' training runs produce, checked with tolerances rather than stored text.

The notebooks' stored outputs come from long runs and CI does not compare them. Instead,
each chapter's training function runs here on the chapter's real data with a small model,
and the results must clear bounds that a broken loop would miss: the loss falls well below
its starting value (which is about ln(50257) = 10.8 for a random model), and a classifier
beats chance on messages it never saw. The data comes from the course mirror, which the
test session serves (conftest.py).
"""

import csv
import json
import math
from functools import partial

import pandas as pd
import pytest
import tiktoken
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from gpt_download import download_data_file
from previous_chapters import (GPTModel, InstructionDataset, SpamDataset,
                               add_classification_head, calc_accuracy_loader, calc_loss_loader,
                               create_balanced_dataset, create_dataloader_v1,
                               custom_collate_fn, download_and_unzip_spam_data,
                               random_split, split_instruction_data, train_classifier_simple,
                               train_model, train_model_simple)
from tiny_models import TINY, TINY_GPT2_VOCAB

# The chapters' data, read in windows of 32 tokens; the bounds below were measured at these sizes.
SMALL_GPT = {**TINY_GPT2_VOCAB, "context_length": 32, "emb_dim": 64}


@pytest.fixture(scope="module")
def tokenizer():
    return tiktoken.get_encoding("gpt2")


pytestmark = [pytest.mark.needs_data, pytest.mark.slow]  # trains on the real data sets: tens of seconds

def test_chapter_5_training_memorises_the_story(tokenizer, tmp_path_factory, capsys):
    text = download_data_file("the-verdict.txt", tmp_path_factory.mktemp("data")).read_text(
        encoding="utf-8")
    split = int(0.9 * len(text))
    torch.manual_seed(123)
    loader = partial(create_dataloader_v1, batch_size=8, max_length=32, stride=32)
    train_loader = loader(text[:split], shuffle=True, drop_last=True)
    val_loader = loader(text[split:], shuffle=False, drop_last=False)
    model = GPTModel(SMALL_GPT)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)

    train_losses, val_losses, tokens_seen = train_model_simple(
        model, train_loader, val_loader, optimizer, "cpu", num_epochs=2, eval_freq=5,
        eval_iter=2, start_context="Every effort moves you", tokenizer=tokenizer)

    assert train_losses[0] > 9.5  # evaluated after the first step: still near random
    assert train_losses[-1] < 6.6  # 36 steps later (measured: 6.2)
    assert calc_loss_loader(train_loader, model, "cpu") < 6.6
    assert all(math.isfinite(loss) for loss in val_losses)
    assert tokens_seen == sorted(tokens_seen) and tokens_seen[0] == 8 * 32
    assert capsys.readouterr().out.count("Every effort moves you") == 2  # a sample per epoch


@pytest.fixture(scope="module")
def spam_splits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sms")
    df = pd.read_csv(download_and_unzip_spam_data(folder), sep="\t", header=None,
                     names=["Label", "Text"], quoting=csv.QUOTE_NONE)
    balanced = create_balanced_dataset(df)
    balanced["Label"] = balanced["Label"].map({"ham": 0, "spam": 1})
    train, _, test = random_split(balanced, 0.7, 0.1)
    train.to_csv(folder / "train.csv", index=None)
    test.to_csv(folder / "test.csv", index=None)
    return folder / "train.csv", folder / "test.csv"


def test_chapter_6_classifier_beats_chance_on_unseen_messages(tokenizer, spam_splits):
    train_csv, test_csv = spam_splits
    train_set = SpamDataset(train_csv, tokenizer, max_length=32)
    test_set = SpamDataset(test_csv, tokenizer, max_length=32)
    train_loader = DataLoader(Subset(train_set, range(320)), batch_size=8, shuffle=True,
                              drop_last=True, generator=torch.Generator().manual_seed(123))
    test_loader = DataLoader(Subset(test_set, range(160)), batch_size=8)
    torch.manual_seed(123)
    model = add_classification_head(GPTModel(SMALL_GPT))
    chance = calc_accuracy_loader(test_loader, model, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    train_losses, val_losses, train_accs, val_accs, seen = train_classifier_simple(
        model, train_loader, test_loader, optimizer, "cpu", num_epochs=3, eval_freq=10,
        eval_iter=5)

    test_accuracy = calc_accuracy_loader(test_loader, model, "cpu")
    assert 0.3 < chance < 0.7
    assert test_accuracy > 0.75, f"test accuracy {test_accuracy:.2f} after training"
    assert train_losses[-1] < train_losses[0]
    assert seen == 3 * 320


def test_train_classifier_simple_evaluates_after_step_0_then_every_eval_freq():
    """The book's schedule: with 12 batches and eval_freq=5, losses after steps 0, 5 and 10."""
    torch.manual_seed(0)
    model = add_classification_head(GPTModel(TINY))
    frozen_before = model.tok_emb.weight.clone()
    head_before = model.out_head.weight.clone()
    inputs, labels = torch.randint(0, 20, (24, 4)), torch.randint(0, 2, (24,))
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)

    train_losses, val_losses, train_accs, val_accs, seen = train_classifier_simple(
        model, loader, loader, optimizer, "cpu", num_epochs=1, eval_freq=5, eval_iter=1)

    assert len(train_losses) == len(val_losses) == 3
    assert len(train_accs) == len(val_accs) == 1 and seen == 24
    assert not torch.equal(model.out_head.weight, head_before)  # the head was trained
    assert torch.equal(model.tok_emb.weight, frozen_before)   # the frozen part was not


def test_chapter_7_instruction_fine_tuning_lowers_the_loss(tokenizer, tmp_path_factory):
    data_file = download_data_file("instruction-data.json", tmp_path_factory.mktemp("data"))
    train_data, val_data, _ = split_instruction_data(json.loads(data_file.read_text("utf-8")))
    collate = partial(custom_collate_fn, allowed_max_length=SMALL_GPT["context_length"])
    train_loader = DataLoader(InstructionDataset(train_data[:96], tokenizer), batch_size=8,
                              collate_fn=collate, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(123))
    val_loader = DataLoader(InstructionDataset(val_data[:16], tokenizer), batch_size=8,
                            collate_fn=collate)
    torch.manual_seed(123)
    model = GPTModel(SMALL_GPT)
    before = calc_loss_loader(val_loader, model, "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.1)

    train_losses, val_losses, _ = train_model_simple(
        model, train_loader, val_loader, optimizer, "cpu", num_epochs=2, eval_freq=5,
        eval_iter=1, start_context="Below is an instruction", tokenizer=tokenizer)

    assert before > 10.0
    assert train_losses[-1] < 5.5  # 24 steps later (measured: 4.9)
    assert calc_loss_loader(val_loader, model, "cpu") < 5.5  # measured: 4.5


def nan_model(config):
    torch.manual_seed(0)
    model = GPTModel(config)
    with torch.no_grad():
        model.final_norm.shift.fill_(float("nan"))  # every logit, and so the loss, is NaN
    return model


@pytest.mark.parametrize("train", [train_model_simple, train_model])
def test_a_nan_loss_stops_language_model_training(train):
    ids = torch.randint(0, 20, (4, 5))
    loader = DataLoader(TensorDataset(ids[:, :-1], ids[:, 1:]), batch_size=2)
    model = nan_model(TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        train(model, loader, loader, optimizer, "cpu", 1, 1, 1, None, None)
    if train is train_model:  # appendix D checks its schedule; the book's loop does not
        with pytest.raises(ValueError, match="eval_freq"):
            train(GPTModel(TINY), loader, loader, optimizer, "cpu", 1, 0, 1, None, None)


def test_a_nan_loss_stops_classifier_training():
    model = add_classification_head(nan_model(TINY))
    loader = DataLoader(TensorDataset(torch.randint(0, 20, (4, 4)), torch.tensor([0, 1, 0, 1])),
                        batch_size=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(FloatingPointError, match="loss became nan"):
        train_classifier_simple(model, loader, loader, optimizer, "cpu", 1, eval_freq=1, eval_iter=1)
