"""The training loops and the evaluation helpers of chapters 5 and 6, on tiny models.

Each loop must make exactly the updates of the plain loop (clear the gradients,
backpropagate, step), train with dropout on and evaluate with it off.
tools/mutation_check.py checks that these tests fail when any of those steps is deleted.
"""

import copy

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from char_tokenizer import CharTokenizer
from previous_chapters import (
    GPTModel,
    add_classification_head,
    calc_accuracy_loader,
    calc_classifier_loss_batch,
    calc_classifier_loss_loader,
    calc_loss_batch,
    calc_loss_loader,
    classifier_predictions,
    evaluate_classifier,
    evaluate_model,
    train_classifier_simple,
    train_model,
    train_model_simple,
)
from tiny_models import tiny_config

VOCAB = len(CharTokenizer.alphabet)  # the samples printed during training are decoded by it
TINY = tiny_config(vocab_size=VOCAB)


def language_model(drop_rate=0.0, seed=0):
    torch.manual_seed(seed)
    return GPTModel({**TINY, "drop_rate": drop_rate})


def classifier(drop_rate=0.0, seed=0):
    return add_classification_head(language_model(drop_rate, seed), num_classes=2)


def text_loader(num_windows=6, batch_size=2, seed=1):
    """Random (inputs, targets) windows, targets shifted by one token."""
    data = torch.randint(0, VOCAB, (num_windows, 7), generator=torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(data[:, :-1], data[:, 1:]), batch_size=batch_size)


def label_loader(num_examples=6, batch_size=2, seed=1):
    """Random token sequences with random 0/1 labels."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, VOCAB, (num_examples, 6), generator=generator)
    labels = torch.randint(0, 2, (num_examples,), generator=generator)
    return DataLoader(TensorDataset(inputs, labels), batch_size=batch_size)


def with_stale_gradients(model):
    """Leave gradients on every trainable parameter, as an earlier backward() would."""
    for param in model.parameters():
        if param.requires_grad:
            param.grad = torch.ones_like(param)
    return model


def plain_training(model, loader, loss_fn, epochs, lr):
    """The reference: clear the gradients, backpropagate, step, for every batch."""
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(epochs):
        for inputs, targets in loader:
            optimizer.zero_grad()
            loss_fn(inputs, targets, model, "cpu").backward()
            optimizer.step()
    return model


def assert_same_parameters(trained, reference, untrained):
    changed = False
    for (name, p), q, p0 in zip(trained.named_parameters(), reference.parameters(),
                                untrained.parameters()):
        assert torch.allclose(p, q, atol=1e-6), f"{name} differs from the plain loop's"
        changed |= not torch.equal(p, p0)
    assert changed, "training changed no parameter"


class ModeLog:
    """Records, for every forward pass of `model`, whether gradients were on and dropout was."""

    def __init__(self, model):
        self.calls = []
        model.register_forward_hook(
            lambda module, args, output: self.calls.append((torch.is_grad_enabled(), module.training)))

    def assert_trains_with_dropout_and_evaluates_without(self):
        assert any(grad for grad, _ in self.calls) and any(not grad for grad, _ in self.calls)
        for grad, training in self.calls:
            if grad:
                assert training, "a training step ran with dropout off (model.train() missing?)"
            else:
                assert not training, "an evaluation ran with dropout on (model.eval() missing?)"


# --- the loops make the plain loop's updates -------------------------------------

LR = 0.5  # plain SGD: each step's update is lr times exactly that step's gradients


def test_train_model_simple_makes_the_updates_of_the_plain_loop(capsys):
    model = language_model()
    untrained, reference = copy.deepcopy(model), copy.deepcopy(model)
    loader = text_loader()
    optimizer = torch.optim.SGD(with_stale_gradients(model).parameters(), lr=LR)
    train_model_simple(model, loader, text_loader(seed=2), optimizer, "cpu", num_epochs=2,
                       eval_freq=2, eval_iter=1, start_context="ab", tokenizer=CharTokenizer())
    plain_training(reference, loader, calc_loss_batch, epochs=2, lr=LR)
    assert_same_parameters(model, reference, untrained)


def test_train_model_makes_the_updates_of_the_plain_loop(capsys):
    model = language_model()
    untrained, reference = copy.deepcopy(model), copy.deepcopy(model)
    loader = text_loader()
    optimizer = torch.optim.SGD(with_stale_gradients(model).parameters(), lr=LR)
    train_model(model, loader, text_loader(seed=2), optimizer, "cpu", n_epochs=2,
                eval_freq=2, eval_iter=1)
    plain_training(reference, loader, calc_loss_batch, epochs=2, lr=LR)
    assert_same_parameters(model, reference, untrained)


def test_train_model_accumulates_within_an_epoch_only(capsys):
    """9 batches, 2 per optimizer step: each epoch makes 4 steps and skips the 9th batch;
    no gradient is carried into the next epoch."""
    model = language_model()
    untrained, reference = copy.deepcopy(model), copy.deepcopy(model)
    loader = text_loader(num_windows=9, batch_size=1)
    optimizer = torch.optim.SGD(with_stale_gradients(model).parameters(), lr=LR)
    train_model(model, loader, text_loader(seed=2), optimizer, "cpu", n_epochs=2,
                eval_freq=100, eval_iter=1, accumulation_steps=2)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=LR)
    for _ in range(2):
        batches = list(loader)
        for pair in (batches[0:2], batches[2:4], batches[4:6], batches[6:8]):  # batches[8]: skipped
            reference_optimizer.zero_grad()
            for inputs, targets in pair:
                (calc_loss_batch(inputs, targets, reference, "cpu") / 2).backward()
            reference_optimizer.step()
    assert_same_parameters(model, reference, untrained)


def test_train_classifier_simple_makes_the_updates_of_the_plain_loop(capsys):
    model = classifier()
    untrained, reference = copy.deepcopy(model), copy.deepcopy(model)
    loader = label_loader()
    trainable = [p for p in with_stale_gradients(model).parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=LR)
    train_classifier_simple(model, loader, label_loader(seed=2), optimizer, "cpu",
                            num_epochs=2, eval_freq=2, eval_iter=1)
    plain_training(reference, loader, calc_classifier_loss_batch, epochs=2, lr=LR)
    assert_same_parameters(model, reference, untrained)
    assert torch.equal(model.tok_emb.weight, untrained.tok_emb.weight)  # frozen stays frozen


# --- the loops train with dropout on and evaluate with it off ------------------------
# Each model starts in eval mode, as it is after a chapter's generation cells.

def test_train_model_simple_switches_dropout(capsys):
    model = language_model(drop_rate=0.5).eval()
    log = ModeLog(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train_model_simple(model, text_loader(), text_loader(seed=2), optimizer, "cpu", num_epochs=2,
                       eval_freq=2, eval_iter=1, start_context="ab", tokenizer=CharTokenizer())
    log.assert_trains_with_dropout_and_evaluates_without()
    assert model.training  # ready for more training, as the book leaves it


def test_train_model_switches_dropout(capsys):
    model = language_model(drop_rate=0.5).eval()
    log = ModeLog(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train_model(model, text_loader(), text_loader(seed=2), optimizer, "cpu", n_epochs=2,
                eval_freq=2, eval_iter=1, start_context="ab", tokenizer=CharTokenizer())
    log.assert_trains_with_dropout_and_evaluates_without()
    assert model.training


def test_train_classifier_simple_switches_dropout(capsys):
    model = classifier(drop_rate=0.5).eval()
    log = ModeLog(model)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01)
    train_classifier_simple(model, label_loader(), label_loader(seed=2), optimizer, "cpu",
                            num_epochs=2, eval_freq=2, eval_iter=1)
    log.assert_trains_with_dropout_and_evaluates_without()


# --- each evaluation helper on its own -----------------------------------------------

def assert_evaluates_without_dropout(log):
    assert log.calls and all(not training for _, training in log.calls)


@pytest.mark.parametrize("evaluate, make_model, make_loader", [
    (evaluate_model, language_model, text_loader),
    (evaluate_classifier, classifier, label_loader),
])
def test_evaluate_gives_the_losses_without_dropout_and_resumes_training(evaluate, make_model,
                                                                         make_loader):
    model = make_model(drop_rate=0.5).train()
    without_dropout = copy.deepcopy(model).eval()
    log = ModeLog(model)
    losses = evaluate(model, make_loader(), make_loader(seed=2), "cpu", eval_iter=2)
    assert losses == pytest.approx(evaluate(without_dropout, make_loader(), make_loader(seed=2),
                                            "cpu", eval_iter=2), abs=1e-6)
    assert_evaluates_without_dropout(log)
    assert model.training  # the training loop goes on with dropout


def test_calc_accuracy_loader_evaluates_without_dropout():
    model = classifier(drop_rate=0.5).train()
    without_dropout = copy.deepcopy(model).eval()
    log = ModeLog(model)
    accuracy = calc_accuracy_loader(label_loader(num_examples=20), model, "cpu")
    assert accuracy == calc_accuracy_loader(label_loader(num_examples=20), without_dropout, "cpu")
    assert_evaluates_without_dropout(log)


def test_classifier_predictions_evaluates_without_dropout():
    model = classifier(drop_rate=0.5).train()
    without_dropout = copy.deepcopy(model).eval()
    log = ModeLog(model)
    predictions, labels = classifier_predictions(label_loader(num_examples=20), model, "cpu")
    expected, _ = classifier_predictions(label_loader(num_examples=20), without_dropout, "cpu")
    assert torch.equal(predictions, expected)
    assert torch.equal(labels, torch.cat([y for _, y in label_loader(num_examples=20)]))
    assert_evaluates_without_dropout(log)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("loss_loader, make_model, make_loader", [
    (calc_loss_loader, language_model, text_loader),
    (calc_classifier_loss_loader, classifier, label_loader),
])
def test_loss_loaders_leave_dropout_to_their_caller(loss_loader, make_model, make_loader, training):
    """As in the book: evaluate_model/evaluate_classifier (or a chapter cell) pick the mode."""
    model = make_model(drop_rate=0.5).train(training)
    log = ModeLog(model)
    with torch.no_grad():
        loss_loader(make_loader(), model, "cpu")
    assert log.calls and all(mode == training for _, mode in log.calls)
    assert model.training == training
