"""Chapter 2: tokenizers, the GPT-2 BPE encoding and the sliding-window data loader.

The texts are written here (none comes from the-verdict.txt), so no download is needed.
The tiktoken tests need GPT-2's encoding files, which the test session caches (conftest.py).
"""

import re

import pytest
import tiktoken
import torch

from previous_chapters import (
    END_OF_TEXT_ID,
    TOKEN_PATTERN,
    GPTDatasetV1,
    SimpleTokenizerV1,
    SimpleTokenizerV2,
    create_dataloader_v1,
)

TEXT = (
    'The lighthouse keeper said: "Storms don\'t scare me." She laughed (quietly), '
    "then asked--why not? It was _very_ dark; the sea, however, was calm!"
)


def build_vocab(text):
    tokens = [piece for piece in re.split(TOKEN_PATTERN, text) if piece.strip()]
    return {token: token_id for token_id, token in enumerate(sorted(set(tokens)))}


@pytest.fixture(scope="module")
def vocab():
    return build_vocab(TEXT)


@pytest.fixture(scope="module")
def gpt2():
    return tiktoken.get_encoding("gpt2")


# --- word-level tokenizers -------------------------------------------------------------

def test_token_pattern_splits_words_and_punctuation(vocab):
    tokens = SimpleTokenizerV1(vocab).split('said: "Storms don\'t--why?')
    assert tokens == ["said", ":", '"', "Storms", "don", "'", "t", "--", "why", "?"]


def test_simple_tokenizer_v1_round_trip(vocab):
    tokenizer = SimpleTokenizerV1(vocab)
    ids = tokenizer.encode(TEXT)
    assert len(ids) == 41
    assert ids[:3] == [vocab["The"], vocab["lighthouse"], vocab["keeper"]]
    assert tokenizer.decode(ids) == TEXT


def test_simple_tokenizer_v1_unknown_word_raises_key_error(vocab):
    tokenizer = SimpleTokenizerV1(vocab)
    with pytest.raises(KeyError, match="submarine"):
        tokenizer.encode("The submarine was calm.")


def test_simple_tokenizer_v2_adds_special_tokens_after_the_vocabulary(vocab):
    tokenizer = SimpleTokenizerV2(vocab)
    assert tokenizer.token_to_id["<|endoftext|>"] == len(vocab)
    assert tokenizer.token_to_id["<|unk|>"] == len(vocab) + 1
    assert len(vocab) + 2 == len(tokenizer.token_to_id)
    assert "<|unk|>" not in vocab  # the caller's vocabulary is left alone


def test_simple_tokenizer_v2_keeps_existing_special_token_ids(vocab):
    extended = {**vocab, "<|unk|>": 100, "<|endoftext|>": 101}
    tokenizer = SimpleTokenizerV2(extended)
    assert tokenizer.token_to_id["<|unk|>"] == 100
    assert tokenizer.encode("submarine") == [100]


def test_simple_tokenizer_v2_round_trip_of_known_text(vocab):
    tokenizer = SimpleTokenizerV2(vocab)
    assert tokenizer.decode(tokenizer.encode(TEXT)) == TEXT


def test_simple_tokenizer_v2_maps_unknown_words_to_unk(vocab):
    tokenizer = SimpleTokenizerV2(vocab)
    unk_id = len(vocab) + 1
    ids = tokenizer.encode("The keeper saw a submarine.")
    assert ids == [vocab["The"], vocab["keeper"], unk_id, unk_id, unk_id, vocab["."]]
    assert tokenizer.decode(ids) == "The keeper <|unk|> <|unk|> <|unk|>."


def test_simple_tokenizer_v2_endoftext_between_texts(vocab):
    tokenizer = SimpleTokenizerV2(vocab)
    joined = "The sea was calm. <|endoftext|> She laughed."
    ids = tokenizer.encode(joined)
    assert ids[5] == len(vocab)  # <|endoftext|>
    assert len(vocab) + 1 not in ids  # no <|unk|>: every word is known
    assert tokenizer.decode(ids) == joined


# --- GPT-2 byte-pair encoding ----------------------------------------------------------

@pytest.mark.needs_data
def test_tiktoken_gpt2_known_ids(gpt2):
    assert gpt2.n_vocab == 50257
    assert gpt2.encode("Hello, world.") == [15496, 11, 995, 13]


@pytest.mark.needs_data
def test_tiktoken_gpt2_round_trip_with_unknown_word_and_endoftext(gpt2):
    text = "The keeper met Akwirw ier. <|endoftext|> A new story begins."
    ids = gpt2.encode(text, allowed_special={"<|endoftext|>"})
    assert ids.count(END_OF_TEXT_ID) == 1
    assert [gpt2.decode([i]) for i in gpt2.encode(" Akwirw ier")] == [" Ak", "w", "ir", "w", " ", "ier"]
    assert gpt2.decode(ids) == text


@pytest.mark.needs_data
def test_end_of_text_id_is_the_tokenizers_own(gpt2):
    # Padding and stopping use END_OF_TEXT_ID: it must be the ID tiktoken gives <|endoftext|>.
    assert END_OF_TEXT_ID == gpt2.eot_token
    assert gpt2.decode([END_OF_TEXT_ID]) == "<|endoftext|>"


# --- sliding-window dataset and data loader --------------------------------------------

STORY = (
    "Every evening the keeper climbed the stairs, lit the lamp and watched the ships pass. "
    "One night a storm came, and no ship passed at all."
)


@pytest.fixture(scope="module")
def story_ids(gpt2):
    ids = gpt2.encode(STORY)
    assert len(ids) == 30  # the window counts below rely on this
    return ids


@pytest.mark.needs_data
@pytest.mark.parametrize("max_length, stride, expected_windows", [
    (4, 1, 26),  # every start 0..25
    (4, 4, 7),   # starts 0, 4, ..., 24
    (8, 5, 5),   # starts 0, 5, 10, 15, 20
    (29, 1, 1),  # exactly one window fits
])
def test_dataset_windows_and_stride(gpt2, story_ids, max_length, stride, expected_windows):
    dataset = GPTDatasetV1(STORY, gpt2, max_length=max_length, stride=stride)
    assert len(dataset) == expected_windows
    for i in range(len(dataset)):
        inputs, targets = dataset[i]
        start = i * stride  # consecutive windows start `stride` tokens apart
        assert inputs.tolist() == story_ids[start:start + max_length]
        assert targets.tolist() == story_ids[start + 1:start + max_length + 1]
        assert inputs.dtype == targets.dtype == torch.long


@pytest.mark.needs_data
def test_dataset_too_short_text_raises_value_error(gpt2):
    with pytest.raises(ValueError, match="max_length"):
        GPTDatasetV1(STORY, gpt2, max_length=30, stride=1)  # 30 tokens: no target for the last
    with pytest.raises(ValueError, match="max_length"):
        create_dataloader_v1("Too short.")


@pytest.mark.needs_data
def test_dataloader_batches_in_order_without_shuffle(story_ids):
    loader = create_dataloader_v1(STORY, batch_size=3, max_length=4, stride=4, shuffle=False)
    inputs, targets = next(iter(loader))
    assert inputs.shape == targets.shape == (3, 4)
    assert inputs.tolist() == [story_ids[0:4], story_ids[4:8], story_ids[8:12]]
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # targets are inputs shifted by one


@pytest.mark.needs_data
def test_dataloader_drop_last(story_ids):
    # 7 windows in batches of 3: two full batches, and one window left over.
    kept = create_dataloader_v1(STORY, batch_size=3, max_length=4, stride=4, shuffle=False)
    assert [len(x) for x, _ in kept] == [3, 3]
    full = create_dataloader_v1(STORY, batch_size=3, max_length=4, stride=4, shuffle=False,
                                drop_last=False)
    batches = list(full)
    assert [len(x) for x, _ in batches] == [3, 3, 1]
    assert batches[-1][0].tolist() == [story_ids[24:28]]


@pytest.mark.needs_data
def test_dataloader_shuffle_is_seeded_and_keeps_every_window():
    def first_tokens(seed):
        torch.manual_seed(seed)
        loader = create_dataloader_v1(STORY, batch_size=1, max_length=4, stride=1,
                                      shuffle=True, drop_last=False)
        return [x[0, 0].item() for x, _ in loader]

    in_order = [x[0, 0].item() for x, _ in create_dataloader_v1(
        STORY, batch_size=1, max_length=4, stride=1, shuffle=False)]
    assert first_tokens(123) == first_tokens(123)
    assert first_tokens(123) != in_order
    assert sorted(first_tokens(123)) == sorted(in_order)
