"""What a collapse / over-squashing run measures (Barbero et al., "Transformers need glasses!", NeurIPS 2024): the
families of near-identical sequence pairs, their lengths, the low precision and the sensitivity settings.

Torch-free (the command line imports it before any model is loaded); every check raises a one-line UserError.
The measures themselves are in ``core.engine.collapse``, the pair builders in ``core.engine.collapse_pairs``; docs/collapse.md
explains both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from coupling_tui.core.errors import UserError

FAMILIES = ("ones", "digits", "commas", "bernoulli", "template")
"""Every sequence family (docs/collapse.md): ``ones`` "1 1 … 1" (counting), ``digits`` "11…10" (copying the last
digit), ``commas`` the same digits with a comma after every third one (the paper's remedy), ``bernoulli`` a seeded
Bernoulli(0.7) 0/1 string "1 0 1 …" and ``template`` the ``digits`` sequence inside a prompt template."""
DEFAULT_FAMILIES = ("ones", "digits", "commas", "bernoulli")
DEFAULT_TEMPLATE = ('What is the last digit of the following sequence? Please answer exactly as "The answer to your '
                    'question is: <ANSWER>". Here is the sequence: {seq}')
"""The paper's appendix prompt (its Fig. 12), wrapped around the ``digits`` sequence by the ``template`` family."""
SLOT = "{seq}"
DEFAULT_LENGTHS = (4, 8, 16, 32, 64, 128)
"""n, the repeats of the repeated symbol (the pair is n and n+1): a ×2 sweep whose longest sequence is a few hundred
tokens ("1 1 … 1" with 129 ones is 257 SmolLM2 tokens); lengths beyond the model's context are dropped."""
LOW_DTYPES = ("bfloat16", "float16", "float32")
ATTENTIONS = ("eager", "sdpa")
"""The attention implementations the low-precision stage may run with (HF's ``attn_implementation``). The kernel
changes bfloat16 results (docs/collapse.md measures both on SmolLM2), so it is a setting, eager by default (the
plain softmax(QKᵀ)V, rounded as the model's dtype rounds), and recorded in the header."""
SENSITIVITY_METHODS = ("auto", "exact", "hutchinson")
DEFAULT_PROBES = 32
DEFAULT_SENSITIVITY_TOKENS = 128
BERNOULLI_P = 0.7
MAX_LENGTH = 1_000_000


@dataclass(frozen=True)
class CollapseSpec:
    families: tuple[str, ...] = DEFAULT_FAMILIES
    """Which families to measure, in this order (the results' axis F)."""
    lengths: tuple[int, ...] | None = None
    """n values (repeats of the repeated symbol; the pair is n and n+1), ascending; None = ``DEFAULT_LENGTHS``
    bounded by the model's context."""
    template: str | None = None
    """The ``template`` family's prompt with one ``{seq}`` slot; None = ``DEFAULT_TEMPLATE``."""
    low_dtype: str = "bfloat16"
    """The low precision the pair is also computed in (a cast copy of the model unless it already runs in it)."""
    attention: str = "eager"
    """The attention implementation of the low-precision stage (ATTENTIONS); the reference keeps the model's own."""
    sensitivity: bool = True
    """Also measure over-squashing: S_i = ‖∂h_last/∂e_i‖_F over the input positions of one sequence."""
    seed: int = 0
    """Seeds the Bernoulli strings and the Hutchinson probes."""
    sensitivity_method: str = "auto"
    """``exact`` (one backward per output coordinate: d of them), ``hutchinson`` (``probes`` random orthogonal
    probes, unbiased; exact when probes = d) or ``auto`` (exact when d ≤ probes, else hutchinson)."""
    probes: int = DEFAULT_PROBES
    sensitivity_tokens: int = DEFAULT_SENSITIVITY_TOKENS
    """The sensitivity sequence: the first family's (``ones`` when measured) longest n-sequence of at most this
    many tokens (the shortest length when none fits)."""

    def __post_init__(self):
        families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
        if not families:
            raise UserError("no collapse families given", f"use some of {', '.join(FAMILIES)}")
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise UserError(f"unknown collapse family: {unknown[0]}", f"use some of {', '.join(FAMILIES)}")
        if len(set(families)) != len(families):
            raise UserError(f"collapse family given twice: {', '.join(families)}")
        object.__setattr__(self, "families", families)
        if self.lengths is not None:
            object.__setattr__(self, "lengths", check_lengths(self.lengths))
        if self.template is not None and self.template.count(SLOT) != 1:
            raise UserError(f"the template must hold exactly one {SLOT} slot (it holds {self.template.count(SLOT)})",
                            f'e.g. --template "Count the ones: {SLOT}"')
        if self.low_dtype not in LOW_DTYPES:
            raise UserError(f"unknown low dtype: {self.low_dtype}", f"use one of {', '.join(LOW_DTYPES)}")
        if self.attention not in ATTENTIONS:
            raise UserError(f"unknown collapse attention: {self.attention}", f"use one of {', '.join(ATTENTIONS)}")
        if self.sensitivity_method not in SENSITIVITY_METHODS:
            raise UserError(f"unknown sensitivity method: {self.sensitivity_method}",
                            f"use one of {', '.join(SENSITIVITY_METHODS)}")
        if self.probes < 1:
            raise UserError(f"--probes must be at least 1 (got {self.probes})")
        if self.sensitivity_tokens < 2:
            raise UserError(f"--sensitivity-tokens must be at least 2 (got {self.sensitivity_tokens})")

    @property
    def template_text(self) -> str:
        return DEFAULT_TEMPLATE if self.template is None else self.template

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}


def check_lengths(lengths) -> tuple[int, ...]:
    """Sorted, distinct, each at least 1."""
    try:
        values = sorted({int(n) for n in lengths})
    except (TypeError, ValueError):
        raise UserError(f"collapse lengths must be whole numbers (got {lengths!r})") from None
    if not values:
        raise UserError("no collapse lengths given")
    if values[0] < 1:
        raise UserError(f"collapse lengths must be at least 1 (got {values[0]})")
    if values[-1] > MAX_LENGTH:
        raise UserError(f"collapse length {values[-1]} is absurdly long")
    return tuple(values)


_RANGE = re.compile(r"^(\d+):(\d+):(x?)(\d+(?:\.\d+)?)$")


def parse_lengths(text: str) -> tuple[int, ...]:
    """``8,16,32`` (a list), ``8:256:x2`` (geometric: 8, 16, …, up to 256, the factor may be fractional, values
    rounded and made distinct) or ``8:64:8`` (arithmetic: 8, 16, …, 64). Ranges include their end when it is hit;
    lists and ranges mix with commas (``2,3,8:64:x2``)."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if ":" not in part:
            if not part.isdigit():
                raise UserError(f"bad --lengths item {part!r}", "use a list like 8,16,32 or a range like 8:256:x2")
            if int(part) > MAX_LENGTH:
                raise UserError(f"bad --lengths item {part!r}: above the longest allowed length {MAX_LENGTH}")
            out.append(int(part))
            continue
        m = _RANGE.match(part)
        if not m:
            raise UserError(f"bad --lengths range {part!r}", "use start:stop:xFACTOR (8:256:x2) or start:stop:STEP "
                                                             "(8:64:8)")
        start, stop, geometric, step = int(m[1]), int(m[2]), bool(m[3]), float(m[4])
        if start < 1 or stop < start:
            raise UserError(f"bad --lengths range {part!r}: needs 1 ≤ start ≤ stop")
        if stop > MAX_LENGTH:
            raise UserError(f"bad --lengths range {part!r}: the stop {stop} is above the longest allowed length "
                            f"{MAX_LENGTH}")
        if geometric:
            if step <= 1:
                raise UserError(f"bad --lengths range {part!r}: the factor must be above 1")
            value = float(start)
            while round(value) <= stop:
                out.append(round(value))
                value *= step
        else:
            if step < 1 or step != int(step):
                raise UserError(f"bad --lengths range {part!r}: the step must be a whole number ≥ 1")
            out.extend(range(start, stop + 1, int(step)))
    return check_lengths(out)
