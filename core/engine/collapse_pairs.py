"""Near-identical sequence pairs for representational collapse (Barbero et al. 2024, Theorem 4.2): a sequence with
n repeats of a symbol and the same sequence with n+1, built by repeating the repeated symbol's token ids (the
theorem's construction), never by re-tokenising a longer string blindly. Each sequence is also tokenised whole, and
where the tokenizer would split it differently the family carries a warning saying so.

Torch-free: a tokenizer (a Hugging Face one, called as ``tokenizer(text, add_special_tokens=…)``) and numpy only.

Families (docs/collapse.md), for n ≥ 1; the symbols are strings whose ids are concatenated:

========== ============================ ============================ =======================================
family     sequence(n)                  partner (n+1)                reading
========== ============================ ============================ =======================================
ones       ``1 1 … 1`` (n ones)         n+1 ones                     counting ones (paper Fig. 5a)
digits     ``11…10`` (n ones, then 0)   n+1 ones, then 0             copying the last digit (Fig. 1, 5c)
commas     digits, a comma after every  the same with n+1 ones       the remedy (Fig. 5d)
           third digit (``111,111,10``)
bernoulli  b_1 … b_n, b ~ Bernoulli(0.7) b_1 … b_n b_n (the last     counting in a 0/1 string (Fig. 5b)
           (space-separated, seeded)    symbol once more)
template   the template around digits   the same with n+1 ones       the paper's prompted copy task (Fig. 12)
========== ============================ ============================ =======================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coupling_tui.core.options.collapse import BERNOULLI_P, SLOT, CollapseSpec
from coupling_tui.core.errors import UserError


@dataclass(frozen=True)
class Sequence:
    ids: list[int]
    text: str


@dataclass(frozen=True)
class Pair:
    n: int
    short: Sequence
    """n repeats."""
    long: Sequence
    """n+1 repeats."""


@dataclass
class FamilyPairs:
    family: str
    pairs: list[Pair]
    pieces: dict[str, list[int]]
    """Each symbol (and the template's head and tail) -> the token ids it contributes."""
    warnings: list[str] = field(default_factory=list)

    def header(self, tokenizer: Any) -> dict:
        return {"pieces": [{"text": text, "ids": ids, "tokens": [tokenizer.decode([i]) for i in ids]}
                           for text, ids in self.pieces.items()],
                "warnings": list(self.warnings),
                "example": {"n": self.pairs[0].n, "short": self.pairs[0].short.text,
                            "long": self.pairs[0].long.text} if self.pairs else None}


def ones_symbols(n: int) -> list[str]:
    return ["1"] + [" 1"] * (n - 1)


def digit_symbols(n: int, comma_every: int = 0) -> list[str]:
    """n ones then a 0; with ``comma_every`` = 3 a comma follows every third digit (counted from the left) except
    the last digit: 111,111,10."""
    digits = ["1"] * n + ["0"]
    if not comma_every:
        return digits
    out: list[str] = []
    for i, digit in enumerate(digits):
        out.append(digit)
        if (i + 1) % comma_every == 0 and i + 1 < len(digits):
            out.append(",")
    return out


def bernoulli_bits(n: int, seed: int, p: float = BERNOULLI_P) -> list[str]:
    """The first n symbols of one seeded Bernoulli(p) 0/1 string (so shorter strings are prefixes of longer ones)."""
    rng = np.random.default_rng(seed)
    return ["1" if b else "0" for b in rng.random(n) < p]


def symbols(family: str, n: int, *, seed: int = 0, bits: list[str] | None = None) -> tuple[list[str], list[str]]:
    """The symbols of the pair (n, n+1) of ``family`` (``template`` gives the digits it wraps)."""
    if family == "ones":
        return ones_symbols(n), ones_symbols(n + 1)
    if family in ("digits", "template"):
        return digit_symbols(n), digit_symbols(n + 1)
    if family == "commas":
        return digit_symbols(n, 3), digit_symbols(n + 1, 3)
    if family == "bernoulli":
        b = (bits if bits is not None else bernoulli_bits(n, seed))[:n]
        short = [b[0]] + [" " + x for x in b[1:]]
        return short, short + [" " + b[-1]]
    raise UserError(f"unknown collapse family: {family}")


def _ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer adds before and after a text (BOS, EOS, …), found around a probe word."""
    with_, without = _ids(tokenizer, "a", True), _ids(tokenizer, "a", False)
    for start in range(len(with_) - len(without) + 1):
        if with_[start:start + len(without)] == without:
            return with_[:start], with_[start + len(without):]
    return [], []


class PairBuilder:
    """Builds every pair of a family from per-symbol ids, tokenised once each."""

    def __init__(self, tokenizer: Any, spec: CollapseSpec):
        self.tokenizer, self.spec = tokenizer, spec
        self.before, self.after = special_tokens(tokenizer)

    def family(self, family: str, lengths: tuple[int, ...]) -> FamilyPairs:
        head, tail = self.spec.template_text.split(SLOT) if family == "template" else ("", "")
        # Whitespace that ends the head belongs to the first symbol: byte-level BPEs glue a space to what follows.
        stripped = head.rstrip()
        lead = head[len(stripped):]
        pieces: dict[str, list[int]] = {}

        def piece(text: str) -> list[int]:
            if text not in pieces:
                pieces[text] = _ids(self.tokenizer, text, False) if text else []
            return pieces[text]

        bits = bernoulli_bits(max(lengths), self.spec.seed) if family == "bernoulli" else None
        pairs, mismatches = [], []
        for n in lengths:
            built = []
            for syms in symbols(family, n, seed=self.spec.seed, bits=bits):
                syms = [lead + syms[0], *syms[1:]]
                ids = self.before + piece(stripped) + [i for s in syms for i in piece(s)] + piece(tail) + self.after
                text = head + "".join(syms)[len(lead):] + tail
                whole = _ids(self.tokenizer, text, True)
                if whole != ids:
                    mismatches.append((n + len(built), len(ids), len(whole)))
                built.append(Sequence(ids=ids, text=text))
            pairs.append(Pair(n=n, short=built[0], long=built[1]))
        if "" in pieces:
            del pieces[""]
        warnings = []
        if mismatches:
            m, ours, theirs = mismatches[0]
            warnings.append(
                f"{family}: the tokenizer splits {len(mismatches)} of the {2 * len(lengths)} sequences differently "
                f"when it tokenises their text whole (first at {m} repeats: {ours} tokens built from the repeated "
                f"pieces, {theirs} tokenised whole); the pairs use the pieces' ids, the theorem's construction")
        for text, ids in pieces.items():
            if not ids:
                warnings.append(f"{family}: the piece {text!r} has no tokens")
        return FamilyPairs(family=family, pairs=pairs, pieces=pieces, warnings=warnings)


def build_pairs(tokenizer: Any, spec: CollapseSpec, lengths: tuple[int, ...]) -> list[FamilyPairs]:
    """Every family of ``spec`` at ``lengths``, in the spec's order."""
    builder = PairBuilder(tokenizer, spec)
    return [builder.family(family, lengths) for family in spec.families]
