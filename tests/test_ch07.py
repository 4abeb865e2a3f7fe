"""Tests for Chapter 7: prompt format, data split, batching, response extraction, metrics."""

import math

import pytest
import torch

from previous_chapters import (
    InstructionDataset,
    custom_collate_fn,
    exact_match,
    extract_response,
    format_input,
    normalize_text,
    rouge_l,
    split_instruction_data,
    text_overlap_scores,
    token_f1,
)

PREAMBLE = ("Below is an instruction that describes a task. "
            "Write a response that appropriately completes the request.")
PAD = 50256
IGNORE = -100


# --- the prompt format ---------------------------------------------------------------

def test_format_input_with_input():
    entry = {"instruction": "Identify the correct spelling of the following word.",
             "input": "Ocassion", "output": "The correct spelling is 'Occasion.'"}
    assert format_input(entry) == (
        PREAMBLE + "\n\n### Instruction:\nIdentify the correct spelling of the following word."
        "\n\n### Input:\nOcassion")


def test_format_input_without_input_has_no_input_section():
    entry = {"instruction": "What is an antonym of 'complicated'?", "input": "",
             "output": "An antonym of 'complicated' is 'simple'."}
    assert format_input(entry) == (
        PREAMBLE + "\n\n### Instruction:\nWhat is an antonym of 'complicated'?")
    # A whitespace-only or missing input counts as no input too.
    assert format_input({**entry, "input": "  \n"}) == format_input(entry)
    assert format_input({"instruction": entry["instruction"]}) == format_input(entry)


# --- the split -----------------------------------------------------------------------

def test_split_sizes_and_order():
    data = list(range(1100))
    train, val, test = split_instruction_data(data)
    assert (len(train), len(val), len(test)) == (935, 55, 110)
    assert train == list(range(935))
    assert test == list(range(935, 1045))
    assert val == list(range(1045, 1100))


def test_split_rejects_fractions_over_one():
    with pytest.raises(ValueError):
        split_instruction_data(list(range(10)), train_frac=0.95, test_frac=0.1)


# --- the dataset ---------------------------------------------------------------------

class CharTokenizer:
    """A stand-in tokenizer: one token per character (its code point)."""

    def encode(self, text):
        return [ord(ch) for ch in text]


def test_instruction_dataset_tokenizes_prompt_then_response():
    entry = {"instruction": "Say hi.", "input": "", "output": "hi"}
    prompt = format_input(entry) + "\n\n### Response:\n"
    dataset = InstructionDataset([entry], CharTokenizer())
    assert len(dataset) == 1
    assert dataset[0] == [ord(ch) for ch in prompt + "hi"]
    with_length = InstructionDataset([entry], CharTokenizer(), return_prompt_length=True)
    assert with_length[0] == (dataset[0], len(prompt))


# --- the collate function ------------------------------------------------------------

BATCH = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]]


def test_collate_pads_to_longest_plus_one_and_shifts():
    inputs, targets = custom_collate_fn(BATCH)
    assert inputs.dtype == targets.dtype == torch.long
    assert inputs.tolist() == [[0, 1, 2, 3, 4],
                               [5, 6, PAD, PAD, PAD],
                               [7, 8, 9, PAD, PAD]]
    assert targets.tolist() == [[1, 2, 3, 4, PAD],
                                [6, PAD, IGNORE, IGNORE, IGNORE],
                                [8, 9, PAD, IGNORE, IGNORE]]


def test_collate_keeps_exactly_one_end_of_text_target_per_sequence():
    _, targets = custom_collate_fn([[11] * 7, [12], [13] * 4, [14] * 7])
    assert targets.shape == (4, 7)
    assert (targets == PAD).sum(dim=1).tolist() == [1, 1, 1, 1]
    assert (targets == IGNORE).sum(dim=1).tolist() == [0, 6, 3, 0]


def test_collate_masks_padding_by_position_not_value():
    # A genuine end-of-text token inside a sequence is a real target and must stay.
    _, targets = custom_collate_fn([[1, PAD, 2], [3]])
    assert targets.tolist() == [[PAD, 2, PAD], [PAD, IGNORE, IGNORE]]


def test_collate_custom_pad_and_ignore_values():
    inputs, targets = custom_collate_fn([[1, 2, 3], [4]], pad_token_id=0, ignore_index=-1)
    assert inputs.tolist() == [[1, 2, 3], [4, 0, 0]]
    assert targets.tolist() == [[2, 3, 0], [0, -1, -1]]


def test_collate_truncates_to_allowed_max_length():
    inputs, targets = custom_collate_fn(BATCH, allowed_max_length=3)
    assert inputs.tolist() == [[0, 1, 2], [5, 6, PAD], [7, 8, 9]]
    assert targets.tolist() == [[1, 2, 3], [6, PAD, IGNORE], [8, 9, PAD]]


def test_collate_masks_the_prompt_on_request():
    batch = [([0, 1, 2, 3, 4], 3), ([5, 6], 1)]
    inputs, targets = custom_collate_fn(batch, mask_prompt=True)
    assert inputs.tolist() == [[0, 1, 2, 3, 4], [5, 6, PAD, PAD, PAD]]
    # Targets 0 .. prompt_length - 2 predict prompt tokens: masked.
    assert targets.tolist() == [[IGNORE, IGNORE, 3, 4, PAD],
                                [6, PAD, IGNORE, IGNORE, IGNORE]]
    # Without mask_prompt the prompt lengths are simply not used.
    _, unmasked = custom_collate_fn(batch)
    assert unmasked.tolist() == custom_collate_fn([ids for ids, _ in batch])[1].tolist()


def test_collate_prompt_masking_needs_prompt_lengths():
    with pytest.raises(ValueError, match="return_prompt_length"):
        custom_collate_fn(BATCH, mask_prompt=True)


def test_masked_targets_are_the_response_and_end_of_text():
    entry = {"instruction": "Say hi.", "input": "", "output": "hi"}
    dataset = InstructionDataset([entry], CharTokenizer(), return_prompt_length=True)
    _, targets = custom_collate_fn([dataset[0]], mask_prompt=True)
    kept = targets[0][targets[0] != IGNORE].tolist()
    assert kept == [ord("h"), ord("i"), PAD]


def test_collate_moves_to_device():
    inputs, targets = custom_collate_fn(BATCH, device="meta")
    assert inputs.device.type == targets.device.type == "meta"


# --- extracting a response -----------------------------------------------------------

def test_extract_response():
    prompt = "### Instruction:\nSay hi.\n\n### Response:\n"
    assert extract_response(prompt + " Hi there! <|endoftext|>ignored", prompt) == "Hi there!"
    # A prompt without the header: the model wrote it, and it is dropped.
    assert extract_response("Say hi.\n\n### Response:\nHi.", "Say hi.") == "Hi."


# --- metrics -------------------------------------------------------------------------

def test_normalize_text():
    assert normalize_text("  The  Author, is\tJANE Austen!  ") == "the author is jane austen"
    assert normalize_text("It's \u201cfine\u201d.") == "its fine"


def test_exact_match_ignores_case_punctuation_and_spacing():
    assert exact_match("The author is Jane Austen.", " the author  is jane austen") == 1.0
    assert exact_match("Jane Austen", "The author is Jane Austen.") == 0.0


def test_token_f1_known_values():
    # precision 1/2, recall 1 -> F1 = 2/3
    assert token_f1("Jane Austen", "Austen.") == pytest.approx(2 / 3)
    # 4 shared words; precision 4/4, recall 4/6 -> F1 = 0.8
    assert token_f1("Paris is the capital.", "The capital of France is Paris.") == pytest.approx(0.8)
    # repeated words count only as often as they occur in both
    assert token_f1("the the the", "the cat") == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "cat") == 0.0


def test_rouge_l_known_values():
    # LCS "the capital" = 2 words; precision 2/4, recall 2/6 -> F1 = 0.4
    assert rouge_l("Paris is the capital.", "The capital of France is Paris.") == pytest.approx(0.4)
    # LCS "a c e" = 3 of 5 and 3 of 3 -> F1 = 2 * 0.6 * 1 / 1.6 = 0.75
    assert rouge_l("a b c d e", "a c e") == pytest.approx(0.75)
    # order matters, unlike token F1
    assert rouge_l("c b a", "a b c") == pytest.approx(1 / 3)
    assert token_f1("c b a", "a b c") == pytest.approx(1.0)
    assert rouge_l("Jane Austen.", "jane austen") == 1.0
    assert rouge_l("x", "y") == 0.0


def test_text_overlap_scores_average_over_entries():
    entries = [{"output": "a b c", "model_response": "a b c"},
               {"output": "a b c", "model_response": "x"}]
    scores = text_overlap_scores(entries)
    assert scores == pytest.approx({"exact_match": 0.5, "token_f1": 0.5, "rouge_l": 0.5})
    assert math.isclose(text_overlap_scores(entries[:1], json_key="output")["rouge_l"], 1.0)
