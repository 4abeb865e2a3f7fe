"""A tokenizer with tiktoken's encode/decode interface for a 40-symbol alphabet, so that
tests can train and sample tiny language models without GPT-2's vocabulary."""


class CharTokenizer:
    alphabet = "abcdefghijklmnopqrstuvwxyz .,!?'-0123456"

    def encode(self, text, allowed_special=()):
        return [self.alphabet.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.alphabet[i] for i in ids)
