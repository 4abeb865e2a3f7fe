"""Appendix F: our byte-pair encoding, trained and loaded from GPT-2's files.

With GPT-2's encoder.json and vocab.bpe loaded, BPETokenizerSimple must give exactly the IDs
of tiktoken's "gpt2" encoding: on the course's data sets (each encoded once, in a module
fixture), on hand-picked hard cases and on strings hypothesis generates; and decode(encode(s))
must give s back. Bad input (a vocabulary too small, unknown special tokens, malformed files)
must raise a ValueError of one line that names the problem (and the file).
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import regex
import tiktoken
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpt_download import GPT2_TOKENIZER_FILES, download_data_file, download_gpt2_tokenizer_files
from previous_chapters import (
    GPT2_SPLIT_PATTERN,
    BPETokenizerSimple,
    count_pairs,
    gpt2_byte_to_unicode,
    merge_pair,
    merge_steps,
)

ROOT = Path(__file__).resolve().parent.parent
EOT = "<|endoftext|>"
HARD_CASES = [
    "", " ", "  ", "\n", "\t", "\r\n", " \n \n", "😀", "😀😀😀", " 👍🏽", "🇩🇪🇫🇷", "🧑‍🚀",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𝟙𝟚𝟛", "\U0010fffd", "中文字符", "日本語のテキスト", "한국어", "Ελληνικά",
    "e\u0301", "n\u0303a\u030a\u0323", "\u0301 leading mark", "a  b   c    d", "tabs\t\tand\t",
    "\n\n\nnewlines\n", "   \n  mixed \t \n", "trailing spaces   ", "0", "3.14159",
    "1,000,000", "2024-01-01", "١٢٣ ४५६", "I'm you're he'll they'd we've it's", "IT'S WE'VE",
    "'s", "don't'", "x<|endoftext|>y", "<|endoftext|>", "<|endoftext|><|endoftext|>",
    " <|endoftext|> ", "<|endoftext", "<|endoftext|", "\x00\x01\x7f", "\u200b\ufeff\u00a0",
    "\u2028\u2029\u0085\x1c\x1d", "naïve café", "!!!???...", "a" * 300, "😀" * 50,
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return download_gpt2_tokenizer_files(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def gpt2(files):
    return BPETokenizerSimple().load_vocab_and_merges_from_openai(*files)


@pytest.fixture(scope="module")
def reference():
    return tiktoken.get_encoding("gpt2")


@pytest.fixture(scope="module")
def course_texts(tmp_path_factory):
    """{data set: its texts}: the story, the SMS messages and every instruction field."""
    folder = tmp_path_factory.mktemp("data")

    def read(name):
        return download_data_file(name, data_dir=folder).read_text(encoding="utf-8")
    messages = [line.split("\t", 1)[1]
                for line in read("sms_spam_collection/SMSSpamCollection").splitlines()]
    fields = [value for entry in json.loads(read("instruction-data.json"))
              for value in entry.values()]
    return {"story": [read("the-verdict.txt")], "sms": messages, "instructions": fields}


# --- the pieces ----------------------------------------------------------------------

def test_byte_to_unicode_is_gpt2s_table():
    table = gpt2_byte_to_unicode()
    assert list(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(char.isprintable() and not char.isspace() for char in table.values())
    assert table[ord("A")] == "A" and table[ord("!")] == "!" and table[255] == "ÿ"
    assert (table[32], table[10], table[0]) == ("Ġ", "Ċ", "Ā")
    assert sum(chr(byte) != char for byte, char in table.items()) == 68


def test_split_pattern_keeps_spaces_with_words_and_splits_contractions():
    pieces = regex.findall(GPT2_SPLIT_PATTERN, "Hello world! I'd say  it's 2024...\t\tOK 😀\n")
    assert pieces == ["Hello", " world", "!", " I", "'d", " say", " ", " it", "'s", " 2024",
                      "...", "\t", "\t", "OK", " 😀", "\n"]


def test_count_pairs_weighs_words_by_their_count_and_merge_pair_goes_left_to_right():
    counts = count_pairs({(1, 2, 3): 2, (2, 3): 5, (4,): 7})
    assert counts == {(1, 2): 2, (2, 3): 7}
    assert merge_pair([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]
    assert merge_pair([], (1, 1), 9) == [] and merge_pair([1], (1, 1), 9) == [1]


# --- training ------------------------------------------------------------------------

def test_training_merges_the_most_frequent_pair_first_and_round_trips():
    text = "low lower lowest slow <|endoftext|> low"
    tokenizer = BPETokenizerSimple().train(text, vocab_size=262)
    assert len(tokenizer.vocab) == 262 and tokenizer.special_tokens == {EOT: 261}
    first = [tokenizer.vocab[new_id] for new_id in tokenizer.merges.values()]
    assert first[:3] == [b"lo", b"low", b" low"]
    assert b"|" not in b"".join(first)  # the special token's text is never merged
    ids = tokenizer.encode(text, allowed_special={EOT})
    assert ids.count(261) == 1 and tokenizer.decode(ids) == text
    assert tokenizer.decode(tokenizer.encode("unseen 😀 text")) == "unseen 😀 text"


def test_training_is_deterministic_and_a_smaller_vocabulary_is_a_prefix():
    text = "the cat sat on the mat; the cat ate the rat " * 3
    big = BPETokenizerSimple().train(text, 300, allowed_special=())
    small = BPETokenizerSimple().train(text, 270, allowed_special=())
    assert list(small.merges.items()) == list(big.merges.items())[:14]
    assert BPETokenizerSimple().train(text, 300, allowed_special=()).merges == big.merges


def test_training_stops_when_nothing_is_left_to_merge():
    tokenizer = BPETokenizerSimple().train("ab ab", vocab_size=1000, allowed_special=())
    assert [tokenizer.vocab[i] for i in tokenizer.merges.values()] == [b"ab", b" ab"]
    assert tokenizer.encode("ab ab") == [256, 257]


@pytest.mark.needs_data
def test_training_on_the_story(course_texts):
    story = course_texts["story"][0]
    tokenizer = BPETokenizerSimple().train(story, vocab_size=300)
    merged = [tokenizer.vocab[i] for i in list(tokenizer.merges.values())[:4]]
    assert merged == [b" t", b"he", b" a", b"in"]
    ids = tokenizer.encode(story)
    assert tokenizer.decode(ids) == story and len(ids) < len(story.encode("utf-8")) * 0.7


def test_merge_steps_end_in_what_encode_gives():
    tokenizer = BPETokenizerSimple().train("banana bandana", 270, allowed_special=())
    steps = merge_steps(tokenizer, " banana")
    assert steps[0] == list(b" banana") and steps[-1] == tokenizer.encode(" banana")
    assert all(len(a) > len(b) for a, b in zip(steps, steps[1:]))


# --- GPT-2's files: exactly tiktoken's encoding ---------------------------------------

@pytest.mark.needs_data
def test_download_gives_gpt2s_tokenizer_files(files):
    for path in files:
        size, sha256 = GPT2_TOKENIZER_FILES[path.name]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256


@pytest.mark.needs_data
def test_gpt2_vocabulary_loads(gpt2, reference):
    assert len(gpt2.vocab) == reference.n_vocab == 50257
    assert len(gpt2.merges) == 50000 and gpt2.special_tokens == {EOT: 50256}
    assert gpt2.encode("Hello, world.") == [15496, 11, 995, 13]
    # every token of the vocabulary, encoded as a word of its own, is that one token
    for token_id, data in gpt2.vocab.items():
        if token_id != 50256:
            assert gpt2.apply_merges([gpt2.byte_ids[b] for b in data]) == [token_id], data


@pytest.mark.needs_data
@pytest.mark.parametrize("name", ["story", "sms", "instructions"])
def test_same_ids_as_tiktoken_on_the_course_data(name, course_texts, gpt2, reference):
    texts = course_texts[name]
    ours = [gpt2.encode(text, allowed_special={EOT}) for text in texts]
    assert ours == reference.encode_batch(texts, allowed_special={EOT}, num_threads=1)
    assert [gpt2.decode(ids) for ids in ours] == texts


@pytest.mark.needs_data
@pytest.mark.parametrize("allowed", [set(), {EOT}, "all"])
def test_same_ids_as_tiktoken_on_hard_cases(allowed, gpt2, reference):
    for text in HARD_CASES:
        if EOT in text and not allowed:
            with pytest.raises(ValueError, match="special token"):
                reference.encode(text, allowed_special=allowed)
            with pytest.raises(ValueError, match="allowed_special"):
                gpt2.encode(text, allowed_special=allowed)
            continue
        ids = gpt2.encode(text, allowed_special=allowed or None)
        assert ids == reference.encode(text, allowed_special=allowed), repr(text)
        assert gpt2.decode(ids) == text


@pytest.mark.needs_data
def test_surrogates_become_what_tiktoken_makes_of_them(gpt2, reference):
    for text in ["\ud83d\ude00 paired", "lone \ud800 half", "\udfff"]:
        assert gpt2.encode(text) == reference.encode(text)


AWKWARD = st.sampled_from([" ", "  ", "\t", "\n", "\r", "'s", "'ll", "'D", EOT, "😀", "👍🏽",
                           "中", "e\u0301", "١", "3", "..", "\u00a0", "\x00"])
TEXTS = st.one_of(st.text(), st.lists(st.one_of(AWKWARD, st.characters()), max_size=30).map("".join))


@pytest.mark.needs_data
@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS)
def test_generated_strings_encode_like_tiktoken_and_round_trip(text, gpt2, reference):
    ids = gpt2.encode(text, allowed_special="all")
    assert ids == reference.encode(text, allowed_special="all")
    assert gpt2.decode(ids) == text


# --- special tokens and bad input ----------------------------------------------------

@pytest.mark.needs_data
def test_special_token_needs_permission_like_in_tiktoken(gpt2, reference):
    text = f"one{EOT}two"
    with pytest.raises(ValueError, match=r"allowed_special=\{'<\|endoftext\|>'\}"):
        gpt2.encode(text)
    assert gpt2.encode(text, allowed_special="all") == gpt2.encode(text, allowed_special={EOT})
    assert gpt2.encode(text, allowed_special={EOT}) == [505, 50256, 11545]
    assert gpt2.decode([50256]) == reference.decode([50256]) == EOT


def one_line_error(action):
    with pytest.raises(ValueError) as caught:
        action()
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("vocab_size, specials", [(255, ()), (0, ()), (256, (EOT,))])
def test_vocabulary_smaller_than_the_bytes_is_refused(vocab_size, specials):
    message = one_line_error(lambda: BPETokenizerSimple().train("text", vocab_size, specials))
    assert f"vocab_size={vocab_size} is too small" in message and "256" in message


def test_unknown_special_token_and_unknown_id_are_refused():
    tokenizer = BPETokenizerSimple().train("some text", 260)
    message = one_line_error(lambda: tokenizer.encode("hi", allowed_special={"<|im_start|>"}))
    assert "'<|im_start|>'" in message and EOT in message
    assert "none" in one_line_error(
        lambda: BPETokenizerSimple().encode("hi", allowed_special={EOT}))
    assert "unknown token ID 9999" in one_line_error(lambda: tokenizer.decode([1, 9999]))


def write_openai_files(folder, vocab=None, merges_text=None):
    """A tiny vocabulary in GPT-2's format: the 256 bytes, merges 'Ġt' and 'he', and EOT."""
    chars = list(gpt2_byte_to_unicode().values())
    table = {char: i for i, char in enumerate(chars)} | {"Ġt": 256, "he": 257, EOT: 258}
    vocab_path, merges_path = folder / "encoder.json", folder / "vocab.bpe"
    vocab_path.write_text(json.dumps(table) if vocab is None else vocab(table), encoding="utf-8")
    merges_path.write_text("#version: 0.2\nĠ t\nh e\n" if merges_text is None else merges_text,
                           encoding="utf-8")
    return vocab_path, merges_path


def test_a_tiny_vocabulary_in_gpt2s_format_loads(tmp_path):
    tokenizer = BPETokenizerSimple().load_vocab_and_merges_from_openai(*write_openai_files(tmp_path))
    assert tokenizer.encode(" the") == [256, 257] and tokenizer.special_tokens == {EOT: 258}


MALFORMED = {
    "not JSON": (lambda t: json.dumps(t)[:-5], None, "encoder.json: not a JSON file"),
    "a list": (lambda t: json.dumps(list(t)), None, "encoder.json: expected a JSON object"),
    "an ID twice": (lambda t: json.dumps(t | {"he": 256}), None, "each used once"),
    "a string ID": (lambda t: json.dumps(t | {"he": "257"}), None, "integer IDs"),
    "a raw space": (lambda t: json.dumps(t | {"a b": 259}), None, "not one of GPT-2's 256 byte"),
    "no byte 0": (lambda t: json.dumps({k: v for k, v in t.items() if v != 0} | {"Āx": 0}),
                  None, "no token for the byte 0"),
    "three parts": (None, "#version: 0.2\nĠ t\nh e x\n", "vocab.bpe, line 3: expected two tokens"),
    "two spaces": (None, "Ġ  t\n", "vocab.bpe, line 1: expected two tokens"),
    "unknown token": (None, "Ġ t\nt he\n", "vocab.bpe, line 2: 'the' is not a token of"),
    "out of order": (None, "h e\nĠ t\n", "vocab.bpe, line 2: the merged token 'Ġt' has ID 256"),
    "no merges": (None, "#version: 0.2\n", "vocab.bpe: no merges in it"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_files_are_refused_in_one_line_naming_the_file(case, tmp_path):
    vocab, merges_text, expected = MALFORMED[case]
    paths = write_openai_files(tmp_path, vocab, merges_text)
    message = one_line_error(lambda: BPETokenizerSimple().load_vocab_and_merges_from_openai(*paths))
    assert str(tmp_path) in message and expected in message, message


# --- scripts/bench_bpe.py ------------------------------------------------------------

BENCH = ROOT / "scripts" / "bench_bpe.py"


@pytest.mark.slow
@pytest.mark.needs_data
def test_benchmark_runs_on_a_tiny_text(tmp_path):
    text = tmp_path / "tiny.txt"
    text.write_text("A tiny text, with 😀 and <|endoftext|> in it.\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(BENCH), "--text", str(text), "--runs", "1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "the same IDs from both" in lines[0]
    assert [line.split("  ")[0] for line in lines[1:]] == ["ours, cold cache", "ours, warm cache",
                                                           "tiktoken"]
    assert all("tokens/s" in line and "x tiktoken's time" in line for line in lines[1:])


@pytest.mark.slow
def test_benchmark_bad_input_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, str(BENCH), "--runs", "0"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
