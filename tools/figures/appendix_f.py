"""The figures of Appendix F: byte-pair encoding from scratch."""

import html

from tools.figures.style import (
    ROOT, Figure, INK, MONO, MUTED, box, canvas, data_file, digraph, light, show_token, strong,
    write)

UTF8_TEXT = "naïve 😀"
ENCODED_WORD = " painted"


def gpt2_bpe():
    """Appendix F's BPETokenizerSimple loaded with GPT-2's two files."""
    from gpt_download import download_gpt2_tokenizer_files
    from previous_chapters import BPETokenizerSimple
    files = download_gpt2_tokenizer_files(models_dir=str(ROOT / "models"))
    return BPETokenizerSimple().load_vocab_and_merges_from_openai(*files)


def draw_appendix_f_utf8_bytes():
    from previous_chapters import gpt2_byte_to_unicode
    table = gpt2_byte_to_unicode()
    chars = [(char, list(char.encode("utf-8"))) for char in UTF8_TEXT]
    n_bytes = sum(len(data) for _, data in chars)
    cell, gap, x0 = 0.62, 0.12, 1.75
    fig, ax = canvas(x0 + n_bytes * cell + (len(chars) - 1) * gap + 0.3, 3.3)
    rows = [(2.55, "characters", "grey"), (1.55, "UTF-8 bytes", "blue"),
            (0.55, "GPT-2's stand-ins", "purple")]
    for y, label, color in rows:
        write(ax, x0 - 0.15, y + 0.22, label, size=10, ha="right", weight="bold",
              color=strong(color))
    x = x0
    for char, data in chars:
        width = len(data) * cell
        box(ax, x + 0.03, 2.55, width - 0.06, 0.45, show_token(char), "grey", fill="white",
            fontsize=13)
        write(ax, x + width / 2, 2.38, f"{len(data)} byte{'s' if len(data) > 1 else ''}",
              size=8, color=MUTED)
        for k, byte in enumerate(data):
            bx = x + k * cell
            box(ax, bx + 0.04, 1.55, cell - 0.08, 0.45, str(byte), "blue", fontsize=10,
                family=MONO)
            ax.annotate("", (bx + cell / 2, 1.02), (bx + cell / 2, 1.53),
                        arrowprops={"arrowstyle": "-|>", "color": INK, "lw": 0.9})
            box(ax, bx + 0.04, 0.55, cell - 0.08, 0.45, table[byte], "purple", fontsize=12,
                family=MONO)
        x += width + gap
    write(ax, 0.15, 0.2, f"{len(UTF8_TEXT)} characters, {n_bytes} bytes: any text is a "
          "sequence of the 256 byte values (gpt2_byte_to_unicode gives the bottom row).",
          size=9, ha="left", color=MUTED)
    return fig


def draw_appendix_f_merge_step():
    import regex

    from previous_chapters import GPT2_SPLIT_PATTERN, count_pairs, merge_pair
    story = data_file("the-verdict.txt").read_text(encoding="utf-8")
    words = {}
    for chunk in regex.findall(GPT2_SPLIT_PATTERN, story):
        key = tuple(chunk.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    top = count_pairs(words).most_common(8)
    best = top[0][0]
    fig, ax = canvas(9.4, 4.3)
    write(ax, 0.2, 4.0, "1. count every pair of neighbouring byte IDs in the story",
          size=11, ha="left", weight="bold")
    scale = 3.4 / top[0][1]
    for k, ((left, right), count) in enumerate(top):
        y = 3.35 - k * 0.4
        color = "green" if k == 0 else "blue"
        label = show_token(bytes([left, right]).decode("utf-8"))
        write(ax, 1.55, y + 0.15, f"{label}  ({left}, {right})", size=10, ha="right",
              family=MONO)
        box(ax, 1.7, y, count * scale, 0.3, "", color, rounding=0.03)
        write(ax, 1.78 + count * scale, y + 0.15, f"{count}", size=9.5, ha="left",
              color=strong(color))
    write(ax, 6.0, 4.0, "2. merge the most frequent", size=11, ha="left", weight="bold")
    left, right = best
    pair_text = show_token(bytes(best).decode("utf-8"))
    write(ax, 6.0, 3.45, f"({left}, {right}) = '{pair_text}' becomes ID 256", size=10,
          ha="left", family=MONO, color=strong("green"))
    word = " the"
    before = list(word.encode("utf-8"))
    after = merge_pair(before, best, 256)
    for y, ids, note in [(2.6, before, "before"), (1.65, after, "after")]:
        write(ax, 6.0, y + 0.55, f"'{show_token(word)}' {note}:", size=9.5, ha="left",
              color=MUTED)
        for k, token_id in enumerate(ids):
            color = "green" if token_id == 256 else "blue"
            box(ax, 6.0 + k * 0.8, y, 0.72, 0.4, str(token_id), color, fontsize=10,
                family=MONO)
    write(ax, 6.0, 1.05, "3. count again, merge again, ...", size=11, ha="left",
          weight="bold")
    write(ax, 0.2, 0.3, f"Pair counts over the story's {sum(words.values()):,} chunks "
          f"({len(words):,} distinct), from count_pairs; the replacement by merge_pair.",
          size=9, ha="left", color=MUTED)
    return fig


def token_row(tokens, new=None):
    """An HTML-like DOT label: one cell per token, the one at index `new` highlighted."""
    cells = []
    for k, token in enumerate(tokens):
        color = "green" if k == new else "blue"
        cells.append(f'<td border="1" color="{strong(color)}" bgcolor="{light(color)}">'
                     f'<font face="{MONO}">{html.escape(show_token(token))}</font></td>')
    return f'<<table border="0" cellspacing="3" cellpadding="4"><tr>{"".join(cells)}</tr></table>>'


def draw_appendix_f_encode_word():
    from previous_chapters import merge_steps
    tokenizer = gpt2_bpe()
    steps = merge_steps(tokenizer, ENCODED_WORD)
    lines = []
    for k, ids in enumerate(steps):
        new = None
        if k:  # the token this step made: the first ID that was not in the previous step
            new = next(i for i, token_id in enumerate(ids)
                       if i >= len(steps[k - 1]) or token_id != steps[k - 1][i])
        label = token_row([tokenizer.decode([i]) for i in ids], new)
        lines.append(f'  s{k} [shape=plain, style="", label={label}];')
    for k in range(1, len(steps)):
        new = sorted(set(steps[k]) - set(steps[k - 1]))[0]
        merged = show_token(tokenizer.decode([new]))
        lines.append(f'  s{k - 1} -> s{k} [label="  merge rank {new - 256:,}: '
                     f"'{merged}' (ID {new:,})\"];")
    lines.append(f'  note [shape=plaintext, style="", fontcolor="{MUTED}", fontsize=10, '
                 'label="at each step: of the neighbouring pairs that are merges,\\n'
                 'the one GPT-2 learned earliest (lowest rank)"];')
    lines.append("  s0 -> note [style=invis];")
    lines.append("  { rank=same; s0; note; }")
    return digraph("\n".join(lines), rankdir="TB", ranksep=0.3)


FIGURES = [
    Figure("appendix_f_utf8_bytes", "appendix_f_bpe.ipynb", "appf-utf8",
           "UTF-8 writes each character as one to four bytes; GPT-2's files write each byte "
           "as a printable stand-in character, so a byte-level vocabulary can spell any text.",
           "The characters of 'naïve' and an emoji above their UTF-8 byte values (one byte "
           "per plain letter, two for the i with diaeresis, four for the emoji) and, below, "
           "the stand-in character GPT-2 writes for each byte.", draw_appendix_f_utf8_bytes,
           "Bytes from Python's str.encode, stand-ins from gpt2_byte_to_unicode."),
    Figure("appendix_f_merge_step", "appendix_f_bpe.ipynb", "appf-first-step",
           "One round of training: count all neighbouring pairs, give the most frequent one a "
           "new ID and replace it everywhere; then count again.",
           "Bars of the eight most frequent byte pairs in The Verdict, the pair space and t "
           "the longest; beside them the word ' the' as four byte IDs before the merge and "
           "as 256, 104, 101 after it.", draw_appendix_f_merge_step,
           "Counts from count_pairs on the story's chunks (the cell above prints the top five)."),
    Figure("appendix_f_encode_word", "appendix_f_bpe.ipynb", "appf-gpt2-steps",
           "Encoding replays the merges in the order they were learned: seven of GPT-2's "
           "merges turn the eight bytes of ' painted' into one token.",
           "The word ' painted' as eight byte tokens, then after each of GPT-2's merges that "
           "applies, in rank order, down to the single token 13055.",
           draw_appendix_f_encode_word,
           "merge_steps with GPT-2's encoder.json and vocab.bpe, as in the cell above."),
]
