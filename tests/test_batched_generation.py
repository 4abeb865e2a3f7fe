"""Chapter 7's batched generation: left padding, the padding mask, and answers identical to
the one-at-a-time loop."""

import pytest
import tiktoken
import torch

from previous_chapters import (
    generate,
    generate_batched,
    generate_response,
    generate_responses,
    left_pad,
    padding_mask,
)
from tiny_models import TINY_GPT2_VOCAB, tiny_config, tiny_model

TINY = tiny_config(context_length=64)  # room for the prompts below (up to 40 tokens) and 12 new


def prompts_of_lengths(*lengths, vocab_size=TINY["vocab_size"], seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab_size, (n,), generator=generator).tolist() for n in lengths]


def one_at_a_time(model, prompts, max_new_tokens, eos_id=None):
    return [generate(model, torch.tensor([prompt]), max_new_tokens, TINY["context_length"],
                     eos_id=eos_id)[0].tolist() for prompt in prompts]


def test_left_pad_puts_every_prompt_at_the_right_edge():
    idx, pad_counts = left_pad([[5], [6, 7, 8]], pad_token_id=0)
    assert idx.tolist() == [[0, 0, 5], [6, 7, 8]]
    assert pad_counts.tolist() == [2, 0]


def test_padding_mask_hides_padding_and_future_but_never_a_whole_row():
    pad_counts = torch.tensor([3, 0])
    mask = padding_mask(pad_counts, 0, 5)[:, 0]  # (batch, queries, keys)
    assert mask.any(dim=-1).all()  # no all-masked softmax row
    assert not mask[0, 3:, :3].any()  # real tokens never see the padding
    assert mask[0, 3:, 3:].equal(torch.ones(2, 2, dtype=torch.bool).tril())
    assert mask[1].equal(torch.ones(5, 5, dtype=torch.bool).tril())  # no padding: the causal mask
    step = padding_mask(pad_counts, 5, 6)[:, 0]  # one new token after 5 cached columns
    assert step[0, 0].tolist() == [False] * 3 + [True] * 3


def test_greedy_batched_equals_one_at_a_time_for_very_different_lengths():
    model = tiny_model(TINY)
    prompts = prompts_of_lengths(1, 6, 23, 40)
    batched = generate_batched(model, prompts, 12, TINY["context_length"], pad_token_id=0)
    assert batched == one_at_a_time(model, prompts, 12)


def test_each_sequence_stops_at_its_own_end_token():
    model = tiny_model(TINY)
    prompts = prompts_of_lengths(2, 9, 17)
    reference = one_at_a_time(model, prompts, 12)
    eos_id = reference[0][2 + 4]  # the first prompt's 5th new token: it stops before it
    expected = one_at_a_time(model, prompts, 12, eos_id=eos_id)
    assert len(expected[0]) == 2 + 4
    assert generate_batched(model, prompts, 12, TINY["context_length"], eos_id=eos_id, pad_token_id=0) == expected


def test_a_batch_that_does_not_fit_the_context_is_refused():
    with pytest.raises(ValueError, match="one at a time"):
        generate_batched(tiny_model(TINY), prompts_of_lengths(60), 10, TINY["context_length"], pad_token_id=0)


@pytest.mark.needs_data
def test_generate_responses_equals_generate_response_text_for_text():
    cfg = {**TINY_GPT2_VOCAB, "context_length": 256}  # every prompt and its 8 new tokens fit: batched
    model = tiny_model(cfg)
    tokenizer = tiktoken.get_encoding("gpt2")
    entries = [{"instruction": "Say hi.", "input": ""},
               {"instruction": "Rewrite the sentence in the passive voice, keeping its tense.",
                "input": "The committee approved the new budget after a long debate."},
               {"instruction": "Name a colour.", "input": ""}]
    expected = [generate_response(model, tokenizer, entry, max_new_tokens=8) for entry in entries]
    assert generate_responses(model, tokenizer, entries, max_new_tokens=8, batch_size=2) == expected


@pytest.mark.needs_data
def test_generate_responses_answers_prompts_too_long_for_the_cache_one_at_a_time():
    cfg = {**TINY_GPT2_VOCAB, "context_length": 48}
    model = tiny_model(cfg)
    tokenizer = tiktoken.get_encoding("gpt2")
    entries = [{"instruction": "Name a colour.", "input": ""}]  # a 30-token prompt + 30 new > 48
    expected = [generate_response(model, tokenizer, entries[0], max_new_tokens=30)]
    assert generate_responses(model, tokenizer, entries, max_new_tokens=30) == expected
