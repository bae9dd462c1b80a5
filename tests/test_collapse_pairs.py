"""The collapse pairs (core.engine.collapse_pairs) and the spec's checks (core.options.collapse): texts against independent
string constructions, ids built by repeating the repeated piece, and the tokenizer check, on the tiny byte-level BPE
of tests/tiny_models.py, on one that merges digits, and on SmolLM2's tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from coupling_tui.core.engine.collapse_pairs import bernoulli_bits, build_pairs, digit_symbols, special_tokens
from coupling_tui.core.options.collapse import DEFAULT_TEMPLATE, FAMILIES, CollapseSpec, parse_lengths
from coupling_tui.core.errors import UserError
from tests.tiny_models import tiny_tokenizer

LENGTHS = (1, 2, 3, 4, 5, 6, 7, 10, 31)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def expected_texts(family: str, n: int, seed: int = 0, template: str = DEFAULT_TEMPLATE) -> tuple[str, str]:
    """The pair's texts, written independently of the builder's symbol lists."""
    def digits(k):
        return "1" * k + "0"

    def commas(s):
        return ",".join(s[i:i + 3] for i in range(0, len(s), 3))

    if family == "ones":
        return " ".join(["1"] * n), " ".join(["1"] * (n + 1))
    if family == "digits":
        return digits(n), digits(n + 1)
    if family == "commas":
        return commas(digits(n)), commas(digits(n + 1))
    if family == "bernoulli":
        bits = np.random.default_rng(seed).random(n) < 0.7
        s = " ".join("1" if b else "0" for b in bits)
        return s, s + " " + ("1" if bits[-1] else "0")
    if family == "template":
        return tuple(template.replace("{seq}", t) for t in (digits(n), digits(n + 1)))
    raise AssertionError(family)


def ids(tokenizer, text: str, special: bool = False) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def test_commas_every_third_digit_from_the_left():
    assert "".join(digit_symbols(4, 3)) == "111,10"
    assert "".join(digit_symbols(5, 3)) == "111,110"
    assert "".join(digit_symbols(6, 3)) == "111,111,0"
    assert "".join(digit_symbols(2, 3)) == "110"


def test_bernoulli_strings_are_seeded_prefixes_near_p():
    long = bernoulli_bits(20_000, seed=3)
    assert bernoulli_bits(50, seed=3) == long[:50] and bernoulli_bits(50, seed=4) != long[:50]
    assert abs(long.count("1") / len(long) - 0.7) < 0.01


@pytest.mark.parametrize("family", FAMILIES)
def test_texts_and_ids_on_the_tiny_bpe(tok, family):
    (fam,) = build_pairs(tok, CollapseSpec(families=(family,), seed=5), LENGTHS)
    assert fam.family == family and [p.n for p in fam.pairs] == list(LENGTHS)
    assert fam.warnings == []                     # this tokenizer splits every text as the pieces do
    before, after = special_tokens(tok)
    for pair in fam.pairs:
        short, long = expected_texts(family, pair.n, seed=5)
        assert (pair.short.text, pair.long.text) == (short, long)
        assert pair.short.ids == ids(tok, short, True) and pair.long.ids == ids(tok, long, True)
        # the longer sequence is the shorter one with the repeated piece's ids once more
        if family in ("ones", "bernoulli"):
            unit = ids(tok, long[len(short):])
            assert pair.long.ids == pair.short.ids[:len(pair.short.ids) - len(after)] + unit + after
        elif family in ("digits", "template"):
            one = ids(tok, "1")
            assert len(one) == 1 and pair.long.ids == pair.short.ids[:-1] + one + pair.short.ids[-1:]
        else:
            assert pair.long.ids.count(ids(tok, "1")[0]) == pair.short.ids.count(ids(tok, "1")[0]) + 1


def test_template_space_goes_with_the_first_digit(tok):
    (fam,) = build_pairs(tok, CollapseSpec(families=("template",), template="Copy: {seq}\nDone"), (3,))
    pair = fam.pairs[0]
    assert pair.short.text == "Copy: 1110\nDone" and fam.warnings == []
    assert " 1" in fam.pieces and pair.short.ids == ids(tok, "Copy: 1110\nDone", True)


def test_a_tokenizer_that_merges_digits_is_reported(tok):
    """A BPE that learnt "11": the pairs still repeat the single "1" id (the theorem's construction), and the family
    says that the text tokenised whole would split differently."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(["11 111 1111 11110 1 0"] * 50, trainers.BpeTrainer(
        vocab_size=280, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    merging = PreTrainedTokenizerFast(tokenizer_object=raw)
    assert len(ids(merging, "1111")) < 4
    digits, ones = build_pairs(merging, CollapseSpec(families=("digits", "ones")), (4, 8))
    one = ids(merging, "1")
    assert digits.pairs[0].short.ids == one * 4 + ids(merging, "0")
    assert len(digits.warnings) == 1 and "splits 4 of the 4 sequences differently" in digits.warnings[0]
    assert ones.warnings == []


@pytest.mark.real_model
@pytest.mark.parametrize("family", FAMILIES)
def test_pairs_on_smollm2_split_one_digit_per_token(smollm2, family):
    tok = smollm2.tokenizer
    (fam,) = build_pairs(tok, CollapseSpec(families=(family,)), (4, 64))
    assert fam.warnings == []
    for pair in fam.pairs:
        short, long = expected_texts(family, pair.n)
        assert pair.short.ids == ids(tok, short, True) and pair.long.ids == ids(tok, long, True)
    pieces = {text: [tok.decode([i]) for i in piece] for text, piece in fam.pieces.items()}
    assert pieces["1"] == ["1"]
    if family in ("ones", "bernoulli"):
        assert pieces[" 1"] == [" ", "1"]          # SmolLM2 keeps the space a token of its own
        assert len(fam.pairs[1].short.ids) == 2 * 64 - 1
    if family == "digits":
        assert [len(p.short.ids) for p in fam.pairs] == [5, 65]
    if family == "commas":
        assert pieces[","] == [","] and len(fam.pairs[1].short.ids) == 65 + 21


@pytest.mark.parametrize("text, expected", [
    ("8,16,32", (8, 16, 32)),
    ("32, 8,8", (8, 32)),
    ("8:256:x2", (8, 16, 32, 64, 128, 256)),
    ("8:100:x2", (8, 16, 32, 64)),
    ("4:16:x1.5", (4, 6, 9, 14)),
    ("8:64:8", (8, 16, 24, 32, 40, 48, 56, 64)),
    ("2,3,8:32:x2", (2, 3, 8, 16, 32)),
])
def test_lengths_lists_and_ranges(text, expected):
    assert parse_lengths(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "no collapse lengths"), ("a", "bad --lengths item"), ("0,4", "at least 1"), ("8:4:x2", "1 ≤ start ≤ stop"),
    ("8:64:x1", "factor must be above 1"), ("8:64", "bad --lengths range"), ("8:64:0", "step must be"),
])
def test_bad_lengths_are_user_errors(text, message):
    with pytest.raises(UserError, match=message):
        parse_lengths(text)


@pytest.mark.parametrize("kwargs, message", [
    ({"families": ("ones", "twos")}, "unknown collapse family: twos"),
    ({"families": ()}, "no collapse families"),
    ({"families": ("ones", "ones")}, "given twice"),
    ({"template": "no slot here"}, "exactly one {seq} slot"),
    ({"template": "{seq} and {seq}"}, "exactly one {seq} slot"),
    ({"low_dtype": "int8"}, "unknown low dtype: int8"),
    ({"sensitivity_method": "guess"}, "unknown sensitivity method"),
    ({"probes": 0}, "--probes must be at least 1"),
    ({"lengths": (0, 3)}, "at least 1"),
])
def test_bad_specs_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        CollapseSpec(**kwargs)


def test_spec_normalises_its_fields():
    spec = CollapseSpec(families=["ones"], lengths=[16, 4, 4])
    assert spec.families == ("ones",) and spec.lengths == (4, 16) and spec.template_text == DEFAULT_TEMPLATE
    assert spec.as_dict()["lengths"] == [4, 16] and hash(spec)
