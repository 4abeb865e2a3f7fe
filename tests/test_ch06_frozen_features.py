"""Chapter 6: training on frozen features gives the book loop's results."""

import copy

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from previous_chapters import (GPTModel, TrainableTop, add_classification_head,
                               calc_accuracy_loader, classifier_predictions, frozen_features,
                               train_classifier_simple)
from tiny_models import tiny_config

TINY = tiny_config(n_layers=3)  # two frozen blocks below the trained one (trf_blocks.2)
BATCH_SIZE = 4


def tiny_classifier():
    torch.manual_seed(123)
    return add_classification_head(GPTModel(TINY), num_classes=2)


def messages(n, seed):
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, TINY["vocab_size"], (n, TINY["context_length"]), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    return TensorDataset(inputs, labels)


def loaders():
    """A shuffling training loader (22 messages: the last, short batch is dropped) and a
    validation loader, as in the chapter."""
    train_loader = DataLoader(messages(22, seed=1), batch_size=BATCH_SIZE, shuffle=True,
                              drop_last=True, generator=torch.Generator().manual_seed(123))
    val_loader = DataLoader(messages(10, seed=2), batch_size=BATCH_SIZE)
    return train_loader, val_loader


def train(model, train_loader, val_loader):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    return train_classifier_simple(model, train_loader, val_loader, optimizer, "cpu",
                                   num_epochs=3, eval_freq=2, eval_iter=2)


def test_feature_loader_yields_the_same_batches_in_the_same_order():
    model = tiny_classifier()
    train_loader, _ = loaders()
    next(iter(train_loader))  # the copy must continue from the loader's current state
    feature_loader = frozen_features(model, train_loader, "cpu")
    for _ in range(3):  # three epochs: three different permutations
        token_labels = [labels for _, labels in train_loader]
        feature_labels = [labels for _, labels in feature_loader]
        assert len(feature_labels) == len(token_labels) == 5
        for a, b in zip(token_labels, feature_labels):
            assert torch.equal(a, b)


def test_training_on_frozen_features_matches_the_book_loop():
    book_model = tiny_classifier()
    fast_model = copy.deepcopy(book_model)
    book_history = train(book_model, *loaders())

    train_loader, val_loader = loaders()
    top = TrainableTop(fast_model)
    fast_history = train(top, frozen_features(fast_model, train_loader, "cpu"),
                         frozen_features(fast_model, val_loader, "cpu"))

    for book_values, fast_values in zip(book_history[:4], fast_history[:4]):
        assert len(book_values) == len(fast_values) > 0
        assert book_values == pytest.approx(fast_values, abs=1e-5)
    assert book_history[4] == fast_history[4]  # examples seen
    # The loss moved (lr 1e-2), so matching histories are not two untouched models.
    assert book_history[0][0] != pytest.approx(book_history[0][-1], abs=1e-3)

    book_state, fast_state = book_model.state_dict(), fast_model.state_dict()
    for name in book_state:
        torch.testing.assert_close(fast_state[name], book_state[name], atol=1e-5, rtol=0)
    trained = [name for name in book_state if name.startswith(("trf_blocks.2.", "final_norm", "out_head"))]
    assert not torch.equal(tiny_classifier().state_dict()[trained[0]], book_state[trained[0]])


def test_predictions_from_frozen_features_are_the_whole_models():
    """The chapter computes its whole-split accuracies and test metrics from the features."""
    model = tiny_classifier()
    top = TrainableTop(model)
    train_loader, val_loader = loaders()
    in_order = DataLoader(messages(22, seed=1), batch_size=BATCH_SIZE)  # a last batch of 2
    for loader in (val_loader, in_order):
        predictions, labels = classifier_predictions(loader, model, "cpu")
        feature_predictions, feature_labels = classifier_predictions(
            frozen_features(model, loader, "cpu"), top, "cpu")
        assert torch.equal(feature_labels, labels)
        assert torch.equal(feature_predictions, predictions)
        assert len(set(predictions.tolist())) == 2  # both classes: the agreement says something
    # The shuffled training loader: the same batches, so the same accuracy over them.
    feature_loader = frozen_features(model, train_loader, "cpu")
    assert calc_accuracy_loader(feature_loader, top, "cpu") == calc_accuracy_loader(train_loader, model, "cpu")


def test_trainable_top_shares_the_models_modules():
    model = tiny_classifier()
    top = TrainableTop(model)
    assert top.last_block is model.trf_blocks[-1]
    assert top.final_norm is model.final_norm
    assert top.out_head is model.out_head
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in top.parameters()} == trainable


def test_refuses_dropout_below_the_last_block():
    torch.manual_seed(123)
    model = add_classification_head(GPTModel({**TINY, "drop_rate": 0.1}), num_classes=2)
    train_loader, _ = loaders()
    with pytest.raises(ValueError, match="dropout .* drop_rate 0.0"):
        frozen_features(model, train_loader, "cpu")


def test_refuses_a_trainable_parameter_below_the_last_block():
    model = tiny_classifier()
    model.trf_blocks[0].ff.layers[0].weight.requires_grad = True
    train_loader, _ = loaders()
    with pytest.raises(ValueError, match="trf_blocks|requires grad"):
        frozen_features(model, train_loader, "cpu")


def test_leaves_the_models_mode_as_it_was():
    model = tiny_classifier().train()
    frozen_features(model, loaders()[1], "cpu")
    assert model.training
