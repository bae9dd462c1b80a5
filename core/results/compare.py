"""Two runs side by side (docs/compare.md): which K, layer and token of run B stand for the ones selected in run A,
and the rows of numbers that compare them (the run scalar, the Haar null it should be read against, the trajectory
fits). Torch-free: ``coupling-tui view A B`` and the explorer's compare layout read it.

The paper's core comparison: a more coupled model (smaller m off the diagonal) is the better one, and a trained
model is far more coupled than the same architecture with random weights."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from coupling_tui.core.maths.run_scalar import run_scalar
from coupling_tui.core.results.headline import run_headline
from coupling_tui.core.results.run import Run, default_k
from coupling_tui.core.results import names


def model_name(run: Run) -> str:
    """A short name for a run's model: its source's last path part."""
    source = str((run.header.get("model") or {}).get("source") or "?")
    return source.split(" (")[0].rstrip("/").rsplit("/", 1)[-1] or source


def weights(run: Run) -> str:
    """"random-init" when the run's model has random weights (a --random-init run, a baseline twin), else
    "trained"."""
    return "random-init" if (run.header.get("model") or {}).get("random_init") else "trained"


def side_label(run: Run) -> str:
    """A short name for a run's model: its source's last path part, "(random-init)" when its weights are."""
    return f"{model_name(run)} (random-init)" if weights(run) == "random-init" else model_name(run)


def run_name(run: Run) -> str:
    """The run a pane shows, named by its model and its weights: "SmolLM2-135M-Instruct (trained)"."""
    return f"{model_name(run)} ({weights(run)})"


def pair_names(a: Run, b: Run, labels: tuple[str, str] = ("A", "B")) -> tuple[str, str]:
    """How the compare layout names A's and B's runs where space is short (border titles, the status line): what
    tells them apart first — "trained · SmolLM2-135M-Instruct" / "random-init · SmolLM2-135M-Instruct" for one model's
    two weights, else ``run_name`` — so a cut at the end never hides it; a run not started yet by its label."""
    if a.header and b.header and model_name(a) == model_name(b):
        return f"{weights(a)} · {model_name(a)}", f"{weights(b)} · {model_name(b)}"
    return (run_name(a) if a.header else labels[0], run_name(b) if b.header else labels[1])


def random_init_run(run: Run) -> Run | None:
    """The random-init baseline stored in ``run`` (``--random-baseline``) as a run of its own: the same tokens,
    the baseline's arrays without their prefix, its model, greedy token and run scalar; None without a baseline.
    Arrays are shared, not copied (a view for the panes)."""
    if not any(name.startswith(names.RANDOM_INIT_PREFIX) for name in run.arrays):
        return None
    info = run.header.get("random_init") or {}
    header = {key: value for key, value in run.header.items() if key not in ("collapse", "context", "random_init",
                                                                            "next_token", names.H_COUPLING_SCALAR,
                                                                            names.H_COUPLING_SCALAR_LAST)}
    header["model"] = dict(info.get("model") or {**(run.header.get("model") or {}), "random_init": True})
    for key in ("next_token", names.H_COUPLING_SCALAR, names.H_COUPLING_SCALAR_LAST):
        if key in info:
            header[key] = info[key]
    header["stages"] = [{"name": "layers", "steps": run.n_layers}]
    arrays = {name[len(names.RANDOM_INIT_PREFIX):]: a for name, a in run.arrays.items()
              if name.startswith(names.RANDOM_INIT_PREFIX)}
    if names.TOKENS_IDS in run.arrays:
        arrays[names.TOKENS_IDS] = run.arrays[names.TOKENS_IDS]
    done = _baseline_layers_done(arrays, run)
    return Run(header=header, arrays=arrays, layers_done=done, steps_done=done,
               finished=run.finished)


def _baseline_layers_done(arrays: dict[str, np.ndarray], run: Run) -> int:
    """Blocks of the baseline computed so far: its norms fill in depth order (depth 0 = the embeddings)."""
    norms = arrays.get(names.TRAJECTORY_NORMS)
    if norms is None or not norms.size:
        return run.layers_done
    depths = np.isfinite(norms).all(axis=1)
    return max(int(depths.sum()) - 1, 0)


def common_k(a: Run, b: Run, preferred: int | None = None) -> int | None:
    """The coupling K both runs have: ``preferred`` (default A's shown K) when both have it, else the largest
    shared one; None when they share none (m_K of different K are not comparable)."""
    shared = sorted(set(a.coupling_ks) & set(b.coupling_ks))
    if not shared:
        return None
    if preferred is None:
        preferred = default_k(a.header.get("coupling"), shared)
    return preferred if preferred in shared else shared[-1]


def map_layer(layer: int, n_from: int, n_to: int) -> int:
    """The block of a model with ``n_to`` blocks at the same relative depth as ``layer`` of one with ``n_from``
    (first ↔ first, last ↔ last, rounded half up); the same index when the depths match."""
    if n_to <= 0:
        return 0
    if n_from == n_to or n_from <= 1:
        return max(0, min(layer, n_to - 1))
    return max(0, min(math.floor(layer * (n_to - 1) / (n_from - 1) + 0.5), n_to - 1))   # halves round up


def same_tokens(a: Run, b: Run) -> bool:
    """Whether both runs analysed the same token ids (same tokenizer and prompt)."""
    ia, ib = a.arrays.get(names.TOKENS_IDS), b.arrays.get(names.TOKENS_IDS)
    if ia is None or ib is None:
        return a.token_texts == b.token_texts and bool(a.token_texts)
    return ia.shape == ib.shape and bool(np.array_equal(ia, ib))


def map_token(token: int, a: Run, b: Run) -> int:
    """B's token standing for A's ``token``: the same index when both have the same tokens, else counted from the
    end (the last token ↔ the last token, where the papers measure), clamped to B's first."""
    n_b = b.n_tokens
    if n_b == 0:
        return 0
    if same_tokens(a, b):
        return max(0, min(token, n_b - 1))
    return max(0, n_b - 1 - (a.n_tokens - 1 - token))


@dataclass(frozen=True)
class Side:
    """One run's numbers for the comparison table (NaN / None where the run has none)."""

    label: str
    family: str
    n_layers: int
    d_model: int
    n_tokens: int
    k: int | None
    scalar_last: dict | None
    """core.maths.run_scalar.last_token_scalar: the run's last token's matrix at K (the papers' quantity)."""
    scalar_all: dict | None
    """core.maths.run_scalar.all_tokens_scalar: every token's depth-coupling matrix at K."""
    scalar_token: dict | None
    """The same over the selected token's matrix."""
    haar_null: float
    """The mean over blocks of the selected token's Haar-null m_K (what "unrelated" reads as for this d, K)."""
    trajectory: dict[str, float]
    """Run.trajectory_values of the selected token."""
    next_token: str | None
    pending: str = ""
    """What the run still lacks of the entries the verdict compares ("2/30 layers"); "" once it has them all."""


def side(run: Run, k: int | None, token: int) -> Side:
    """The numbers of ``run`` at K = ``k`` and ``token`` (both already mapped for run B)."""
    model = run.header.get("model") or {}
    scalar_last = scalar_all = scalar_token = None
    null = math.nan
    if k is not None and k in run.coupling_ks and names.COUPLING_DEPTH_K in run.arrays:
        depth = run.arrays[names.COUPLING_DEPTH_K][run.coupling_ks.index(k)]          # [T, L, L]
        head = run_headline(run, k)
        scalar_last, scalar_all = (head.last, head.all) if head is not None else (None, None)
        if 0 <= token < depth.shape[0] and np.isfinite(depth[token]).any():
            scalar_token = run_scalar(depth[token], k)
        nulls = [run.haar_null(k, layer, token) for layer in range(run.layers_done)]
        nulls = [x for x in nulls if math.isfinite(x)]
        null = float(np.mean(nulls)) if nulls else math.nan
    trajectory = (run.trajectory_values(token) if names.TRAJECTORY_NORMS in run.arrays and 0 <= token < run.n_tokens
                  else {})
    nxt = (run.header.get("next_token") or {}).get("text")
    return Side(label=side_label(run), family=str(model.get("family", "?")), n_layers=run.n_layers,
                d_model=int(model.get("d_model") or 0), n_tokens=run.n_tokens, k=k, scalar_last=scalar_last,
                scalar_all=scalar_all, scalar_token=scalar_token, haar_null=null, trajectory=trajectory, next_token=nxt,
                pending=pending(run, k))


def pending(run: Run, k: int | None) -> str:
    """What ``run`` still lacks of its depth coupling at K = ``k`` over every token (the entries the verdict ranks
    by): "" when finished or every off-diagonal entry is in, else its blocks ("2/30 layers") or, once every block
    is, its coupling entries ("coupling 40 %": the second pass)."""
    if run.finished or not run.header:
        return "" if run.finished else "not started"
    if run.layers_done < run.n_layers:
        return f"{run.layers_done}/{run.n_layers} layers"
    depth = run.arrays.get(names.COUPLING_DEPTH_K)
    if k is None or depth is None or k not in run.coupling_ks:
        return ""
    m = depth[run.coupling_ks.index(k)]                                                 # [T, L, L]
    off = ~np.eye(m.shape[-1], dtype=bool)
    done, total = int(np.isfinite(m[:, off]).sum()), int(m.shape[0] * off.sum())
    return "" if done == total else f"coupling {100 * done // max(total, 1)} %"


def sides(a: Run, b: Run, token: int = -1, k: int | None = None) -> tuple[Side, Side]:
    """Both runs' numbers at A's ``token`` (negative counts from the end) and the common K."""
    if token < 0:
        token += a.n_tokens
    k = common_k(a, b, k)
    return side(a, k, token), side(b, k, map_token(token, a, b))


def _num(x, fmt: str = ".3f") -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def _scalar(s: dict | None, key: str) -> float | None:
    return None if s is None else s.get(key)


def rows(a: Side, b: Side) -> list[tuple[str, str, str]]:
    """(what, A, B) rows of the comparison table, as text; the coupling rows first (0 = coupled)."""
    k = a.k
    ta, tb = a.trajectory, b.trajectory
    out = [("model", f"{a.family} {a.n_layers}×{a.d_model}", f"{b.family} {b.n_layers}×{b.d_model}"),
           ("tokens", str(a.n_tokens), str(b.n_tokens))]
    if k is None:
        out.append(("coupling", "no common K", "no common K"))
    else:
        for name, key, side_key in ((f"m_{k} off-diag (last)", "offdiag", "last"),
                                    (f"m_{k} off-diag (all)", "offdiag", "all"),
                                    ("  adjacent |i−j|=1", "adjacent", "all"),
                                    ("  far |i−j|≥10", "far", "all"),
                                    (f"m_{k} off-diag (token)", "offdiag", "token")):
            out.append((name, _num(_scalar(_pick(a, side_key), key)), _num(_scalar(_pick(b, side_key), key))))
        out.append(("  Haar null (random)", _num(a.haar_null), _num(b.haar_null)))
    out += [("growth ×/block (R²)", _growth(ta), _growth(tb)),
            ("line shape score LSS", _num(ta.get("lss"), ".2f"), _num(tb.get("lss"), ".2f")),
            ("linearisation fidelity", _num(ta.get("fidelity")), _num(tb.get("fidelity"))),
            ("greedy next token", _token(a.next_token), _token(b.next_token))]
    return out


def _pick(s: Side, which: str) -> dict | None:
    """The side's scalar over the last token ("last"), every token ("all") or the selected token ("token")."""
    return {"last": s.scalar_last, "all": s.scalar_all, "token": s.scalar_token}[which]


def _growth(values: dict[str, float]) -> str:
    g, r2 = values.get("growth", math.nan), values.get("growth_r2", math.nan)
    return "–" if not math.isfinite(g) else f"{g:.3f} ({_num(r2, '.2f')})"


def _token(text: str | None) -> str:
    return "–" if text is None else repr(text)


def verdict(a: Side, b: Side) -> str:
    """One sentence: which run is more coupled (smaller all-token mean off-diagonal m), by how much; it says which
    mean it ranks by."""
    ma, mb = _scalar(a.scalar_all, "offdiag"), _scalar(b.scalar_all, "offdiag")
    if a.k is None:
        return "no coupling K in common: the runs' m_K cannot be compared"
    if a.pending or b.pending:
        waiting = " · ".join(f"{name}: {s.pending}" for name, s in (("A", a), ("B", b)) if s.pending)
        return f"no verdict until both runs are complete ({waiting})"
    if ma is None or mb is None:
        return "the run scalar fills in as layers finish"
    if abs(ma - mb) < 5e-4:
        return f"equally coupled at K={a.k} (all-token mean m̄ {ma:.3f})"
    more, less = ("A", "B") if ma < mb else ("B", "A")
    return f"{more} is more coupled at K={a.k}: all-token mean m̄ {min(ma, mb):.3f} vs {max(ma, mb):.3f} ({less})"


def table_lines(a: Run, b: Run, token: int = -1, k: int | None = None) -> list[str]:
    """The comparison as plain text lines (what ``coupling-tui compute --compare`` prints)."""
    sa, sb = sides(a, b, token, k)
    body = rows(sa, sb)
    width = max(len(r[0]) for r in body)
    wa = max(len(sa.label), *(len(r[1]) for r in body)) + 2
    head = [f"{'':<{width}}  {'A ' + sa.label:<{wa + 2}}B {sb.label}"]
    return head + [f"{name:<{width}}  {va:<{wa + 2}}{vb}" for name, va, vb in body] + [verdict(sa, sb)]
