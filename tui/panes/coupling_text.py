"""What the Coupling pane says: its help, its view names and the messages it shows where there is nothing to
draw (tui/panes/coupling.py draws; this holds the words)."""

from __future__ import annotations

import math

NO_COUPLING = "no coupling in this run (computed with --top-k 0)"
NO_TOKEN_VIEW = "no token×token coupling in this run (computed with --no-token-coupling)"
ONLY_DEPTH = "no other coupling view yet: the adjacent and distance plots come with the run's depth coupling"
VIEW_NAMES = {"depth": "depth", "token": "token", "context-out": "context · same output token",
              "context-in": "context · same input token", "adjacent": "adjacent m(l, l+1)",
              "distance": "m against |i − j|"}
NO_PROFILE_COLUMN = "the adjacent view has no column: ↑/↓ move along depth, ←/→ change the token"
PROFILE_METRIC = "the profile views plot m itself (0 = coupled); m switches the heatmaps' colour"


def pair_missing(row: int, col: int) -> str:
    return (f"token×token between layers {row} → {col} was not computed: same-layer pairs are (column = row, "
            f"v back to the depth view and move the column), others need --token-pairs {row}:{col} or adjacent")


def value_text(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "pending"


HELP = """\
## Coupling

Block coupling (Aubry et al., ICLR 2025): how well the top-K singular vectors of one block's Jacobian
diagonalise another's. Entry **[row i, column j] = m_K(J_i, J_j) = ‖ |U_jᵀ J_i V_j| − S_i ‖_F / ‖s_i‖₂**:
J_i (the row) written in the top-K bases of J_j (the column). **m = 0**: perfectly coupled; **≈ 1**: unrelated
(random bases give ≈ 0.98; the line above the matrix shows this **Haar null** for the cursor cell, from J's
stored spectrum). The matrix is not symmetric; its diagonal is 0 by construction.

- **Headline** (the top line): the run scalar, the mean of m_K over i ≠ j of the depth matrix, at the K shown —
  first the **last token**'s (the papers' and the official code's quantity), then the **all-token mean** (every
  token's matrix, the attention-sink token 0 included); for the random-init baseline when `r` shows it; for a
  prompt set's aggregate, each as mean ± std over prompts at the aggregate's K. "not in this file": an old file
  that keeps only its header's all-token scalar.
- **Depth view** (default): rows and columns are layers, at the selected token — or averaged over all
  tokens (`t`). Trained models show a bright band near the diagonal: neighbouring blocks share directions.
- **Token view** (`v`): rows and columns are tokens: J of the selected layer at token t (row) in the bases of
  the column layer at token t′. The column layer is the depth view's cursor column when you press `v` (the same
  layer by default); ↑/↓ then move both layers together. Pairs of different layers need `--token-pairs`.
- **Context views** (`v` again, runs with `--context-layers`): cross-token Jacobians J_{t1 t2} = ∂f_{t2}/∂x_{t1}
  — *same output token*: rows/columns are input tokens t1 ≤ t_out; *same input token*: output tokens t2 ≥ t_in.
  Shown at the context layer nearest the selected one.
- **Adjacent** (`v` after the matrix views): m(l, l+1) (block l's Jacobian in block l+1's bases, dots) and
  m(l+1, l) (dotted) against depth l — the entries beside the diagonal of the depth matrix shown (this token's or
  the token average, at K); ↑/↓ move l. **Distance** (`v` again): the mean m over the ordered pairs at each block
  distance |i − j| (both directions, 2(L − |i − j|) of them); ⇧←/⇧→ move the distance. Both plot m itself (0 =
  coupled), the run shown first and, when it has one, its trained/random-init twin on the same axes (`r` swaps
  which is first); `s` fixes the y axis to 0–1. `coupling-tui figures` draws the same for a paper.
- **Variant** (`u`, runs with `--vju`): depth coupling with U and V exchanged, Vᵀ J U (its diagonal is not 0).
- **Colour**: `1−m²` (the official notebook's plot: 1 = coupled, bright) or `m` itself (`m` key). The **auto**
  scale spans the off-diagonal values of this matrix and of its trained/random-init twin, so `r` compares fairly
  (the diagonal, 1 − m² = 1, is outside it and painted as its top colour); `s` (or `--scale fixed`) switches to the
  **fixed** 0–1 scale, the same for every run, to compare runs by eye. The legend says which scale is on.
- **Cursor**: the row is the selected layer (↑/↓) — or token (←/→) in the token view; shift+←/→ (or H/L)
  moves the column. The line above shows the cursor cell's stored m and 1 − m²: "layer 12 → 17" is
  J of layer 12 written in the bases of layer 17.

Keys: `K` cycles K among those computed, `t` token/average, `r` trained/random-init (when computed with
`--random-baseline`), `v` depth/token/context views, `u` ujv/vju, `m` metric, `s` scale, `e` export this pane to SVG, `E` every pane.

**Prompt sets** (runs of several prompts): `p` / `P` step through the prompts and the **aggregate**, the mean over
prompts of the depth coupling — the last token's, or the token average (`t`) — with the cursor cell's mean ± std
(sample std over prompts). Prompts differ in tokens, so the aggregate has only layer×layer matrices.
"""
