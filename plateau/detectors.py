"""Why the loss stopped going down: one pure detector per kind, (facts, series) in, Finding | None out.

    from plateau import detectors, logfmt
    facts, findings = detectors.diagnose(logfmt.parse_file("out/log.txt").runs[-1], gpu="RTX 4070")
    for f in findings:
        print(f.severity, f.kind, f.title, f.changes)

Facts are plateau.facts' JSON dict, series its numpy arrays (see that module). Each finding quotes the log's
numbers, names the setting to change, to what, and what to expect. Thresholds are module constants with
their reason or source. Trends are Theil-Sen slopes with Sen's 95% interval and Mann-Kendall p-values; noise
is robust (MAD). diagnose() never raises on a partial log: no evals, one eval, only iters, all nan.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from plateau import facts as F
from plateau.config import Config

KINDS = ("overfitting", "data_repetition", "capacity", "lr_too_high", "lr_too_low", "lr_schedule", "divergence",
         "loss_spikes", "no_learning", "eval_variance", "throughput", "config_mismatch", "still_improving", "healthy")
SEVERITIES = ("critical", "warning", "info")
NOT_PATHOLOGY = ("still_improving", "healthy")
# Ties in severity and confidence: the kind that explains the others first (a diverged run also looks flat).
PRIORITY = ("divergence", "no_learning", "overfitting", "capacity", "data_repetition", "lr_too_high", "loss_spikes",
            "lr_schedule", "lr_too_low", "eval_variance", "config_mismatch", "throughput", "still_improving",
            "healthy")


@dataclass
class Finding:
    kind: str
    severity: str  # "critical" | "warning" | "info"
    confidence: float
    title: str
    evidence: list[str]
    fix: str
    changes: dict = field(default_factory=dict)  # config key -> recommended value (diagnose --write-config)
    expect: str = ""  # the expected effect of `changes`, in words with numbers
    region: tuple | None = None  # (first_iter, last_iter) the finding is about, for the plot

    def __post_init__(self):
        assert self.kind in KINDS, self.kind
        assert self.severity in SEVERITIES, self.severity
        self.confidence = round(min(0.99, max(0.05, float(self.confidence))), 2)

    def to_json(self):
        return {"kind": self.kind, "severity": self.severity, "confidence": self.confidence, "title": self.title,
                "evidence": list(self.evidence), "fix": self.fix, "changes": dict(self.changes),
                "expect": self.expect, "region": None if self.region is None else [int(x) for x in self.region]}


# ---------------------------------------------------------------- reference numbers

# Hoffmann et al. 2022 (Chinchilla), Approach 3: L(N, D) = E + A / N^alpha + B / D^beta. Its absolute values are
# for MassiveText; we only use differences between two (N, D) points, added to the run's own loss.
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
COMPUTE_OPTIMAL_TPP = 20.0  # tokens per parameter at the compute-optimal size (Hoffmann et al. 2022)
# GPT-3 paper (Brown et al. 2020) Table 2.1: (params, peak lr, batch tokens) for its model sizes.
GPT3_LR = ((125e6, 6e-4, 0.5e6), (350e6, 3e-4, 0.5e6), (760e6, 2.5e-4, 0.5e6), (1.3e9, 2e-4, 1e6),
           (2.7e9, 1.6e-4, 1e6), (6.7e9, 1.2e-4, 2e6), (13e9, 1e-4, 2e6), (175e9, 0.6e-4, 3.2e6))
# Below 125M the table is extrapolated along its 125M->350M slope (smaller models tolerate higher LR), but
# published small AdamW GPTs stop near 1e-3..2e-3 (Pythia 70M: 1e-3; nanoGPT's 10M shakespeare-char: 1e-3).
LR_REF_MAX = 2e-3
# Muennighoff et al. 2023 (data-constrained scaling): repeated tokens decay in value with R*_D = 15.4 repetitions;
# up to ~4 epochs are nearly as good as fresh data, past ~16 they add little.
REPEAT_DECAY = 15.4
# AdamW training state: fp32 weights, gradients and two moments, 4 bytes each (mixed precision keeps fp32 masters).
BYTES_PER_PARAM = 16
# Activations per layer, 16-bit, flash attention: 34 * tokens * n_embd bytes (Korthikanti et al. 2022, Table 2,
# without the 5*a*s/h attention-score term that flash attention never stores).
ACT_BYTES = 34
LOGIT_BYTES = 8  # per logit: 16-bit logits plus their fp32 upcast in cross-entropy (nanoGPT computes them whole)
# train.py's loss holds the logits of loss_chunk_tokens tokens at a time, not the micro-batch's; a log from
# another trainer is sized for the whole micro-batch, since --write-config's file may run there.
LOSS_CHUNK_TOKENS = Config.__dataclass_fields__["loss_chunk_tokens"].default
MEM_USABLE = 0.85  # of GPU memory for tensors; the rest is CUDA context, allocator slack and fragmentation

# ---------------------------------------------------------------- thresholds

OVERFIT_SE_MULT = 3.0  # val above its minimum by 3 standard errors of a difference: p < 0.002 one-sided
OVERFIT_MIN_EVALS = 3  # STYLE rule 4: fewer evals cannot show a minimum and a rise
OVERFIT_CRIT_REL = 0.05  # val 5% above its best: most of a run's late progress undone, stop now
# Train loss under half of val. A random split of one corpus gives gaps of a few percent; nanoGPT's
# shakespeare_char, which memorises, reaches ~25% at its best val; past 50% the model recites its training data.
OVERFIT_GAP_REL = 0.5
GAP_P = 0.01  # Mann-Kendall p for a widening val - train gap (strict: the gap drifts with split differences)
# Train falling this many times faster than val while the gap widens: a model at its capacity cannot do that,
# one memorising a too-small dataset does (each epoch gains train far more than it gains held-out text).
MEMORISE_RATIO = 3.0
TREND_P = 0.05  # Mann-Kendall p under which a recent trend counts as real
FLAT_MIN_COVER = 0.25  # a flat verdict needs the trend window to span a quarter of the run (not a pasted excerpt)
CAPACITY_MIN_TPP = COMPUTE_OPTIMAL_TPP  # below compute-optimal the model is not the limit yet
CAPACITY_TPP = 3 * COMPUTE_OPTIMAL_TPP  # far past compute-optimal: the same compute in a bigger model does better
# Flattening: a doubling of training gains under 3% of the loss. Chinchilla's data term B/D^beta gives >= 3.5% per
# doubling up to 1e10 tokens for a model too big to saturate, so a flatter curve is the model (or repeats) saturating.
CAPACITY_FLAT_GAIN = 0.03
SATURATED_MIN_EVALS = 5  # a flat curve with no saturating fit: evals in the run's second half that show it
FIT_E_RANGE_REL = 0.2  # an asymptote whose 95% range spans over 20% of the loss (or goes below 0) bounds nothing
FIT_DROP_SE = 10.0  # a fit's curve must fall by 10 standard errors over its points to say where it is heading
DATA_EPOCHS_WARN = 4.0  # Muennighoff et al. 2023: up to ~4 epochs is nearly as good as unique data
DATA_EPOCHS_CRIT = 16.0  # Muennighoff et al. 2023: past ~16 epochs repeated tokens are worth little
# LR this far above the table's value for the size (no batch correction, which is least certain for tiny batches) is
# too high without other evidence; with spikes, rises or nan, any LR above the batch-corrected reference is suspect
LR_HIGH_MULT = 4.0
# A loss 1.5x a uniform guess: per-batch noise at init is ~1% of it, so only overshooting steps get there.
ABOVE_UNIFORM_MULT = 1.5
LR_LOW_DIV = 4.0  # LR this far below the reference learns needlessly slowly
LR_LOW_STRONG_DIV = 10.0  # ... and this far below, whatever the curve looks like
RISE_MIN_REL = 0.01  # a train loss rise after warmup must be at least 1% of the loss to count as instability
OSC_Z = 2.0  # an eval-to-eval rise beyond 2 standard errors of a difference is a significant rise
OSC_MIN_RISES = 3  # ... and 3 rise/fall reversals of that size is oscillation, not a trend
SPIKE_Z = 6.0  # robust z of an upward loss jump; Gaussian noise gives z > 6 once in 1e9 steps
SPIKE_RECOVERY = 10  # logged points after a spike within which the loss must return to count as recovered
SPIKE_WINDOW = 25  # loss differences on each side that give a jump's local noise
SPIKE_WARN = 2  # this many spikes (or one unrecovered) is a warning, one recovered spike is information
NO_LEARN_REL = 0.02  # loss within 2% of its initial value ...
NO_LEARN_MIN_ITERS = 100  # ... after at least this many iterations (and past warmup when known)
# The same loss on this many logged iterations in a row: batches differ, so only an output that ignores its
# input (uniform predictions, a zeroed model) repeats a 4-decimal loss. bf16's step at a loss of 2-4 (1/64) under
# batch noise of ~0.05 repeats a value with p ~0.09: ten in a row by chance, ~1e-10.
FROZEN_MIN_LINES = 10
DIVERGE_MARGIN = 0.9  # the loss must first fall below 90% of a uniform guess for a return above it to count
DIVERGE_NOISE = 5.0  # ... and by 5 noise standard deviations, so that a noisy flat series never qualifies
EVAL_SE_REL = 0.005  # eval se above 0.5% of the loss hides the 1%-size differences runs are compared by
EVAL_SNR = 1.0  # the change over one eval interval below one standard error of a difference is unresolved
# Fixed eval batches resolve the trend but not the level: an se of 2% of the loss leaves differences of ~6%
# (2 se of a difference) unresolved, the size of what runs are compared by (a model size step, an LR change).
# Random eval batches whose trend is significant anyway (TREND_P) are noisy one by one, yet the run's
# direction is known: a warning only from this level on, below it information.
EVAL_LEVEL_REL = 0.02
# Below one epoch no training token was seen twice: a val - train gap is distribution shift, not overfitting,
# so an unresolved gap matters only from one epoch on.
GAP_MATTERS_EPOCHS = 1.0
EVAL_ITERS_MAX_MULT = 100  # never recommend more than 100x the eval work: evaluate less often instead
MFU_WARN = 20.0  # % of the real peak: tuned nanoGPT reaches 35-60% on A100/4090; under 20% half the GPU idles
EVAL_OVERHEAD_WARN = 0.10  # more than 10% of wall time in eval and checkpointing
STALL_WARN = 0.05  # more than 5% of training time lost to iterations over 3x the median
CLAIM_TOL = 1.5  # a named size ('125M') more than 1.5x off the count is a different model (124M vs 117M is not)
PARAMS_TOL = 0.02  # printed vs config-computed parameter count: 2% covers rounding of '40.56M'
SCHED_END_MULT = 2.0  # final LR above 2x min_lr: the run ends before its decay does
SCHED_MIN_LR_RATIO = 0.5  # min_lr at half the peak or more: the decay that gives the final drop barely happens
SCHED_HIGH_LR = 0.5  # loss flat while the LR is still above half its peak
COOLDOWN_GAIN = 0.03  # an LR decay to ~lr/10 typically removes a few % of the loss (Hagele et al. 2024; Hu et al. 2024)


# ---------------------------------------------------------------- helpers


def v(f, name):
    """A numeric fact's value, or None."""
    x = (f.get(name) or {}).get("value")
    return F.number(x, limit=1e30)


def sv(f, name):
    x = (f.get(name) or {}).get("value")
    return x if isinstance(x, str) else None


def si(x):
    """40.56M, 5.24B, 524,288."""
    if x is None:
        return "unknown"
    for mult, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e4, "k")):
        if abs(x) >= mult:
            return f"{x / mult:.4g}{suffix}" if suffix != "k" else f"{x:,.0f}"
    return f"{x:.4g}"


def g(x, d=4):
    return "unknown" if x is None else f"{x:.{d}g}"


def steps_to(x, interval=None):
    """An iteration count rounded up to a multiple of the eval interval (or to 2 significant figures)."""
    if interval:
        return int(math.ceil(x / interval) * interval)
    p = 10 ** max(0, int(math.log10(max(x, 1))) - 1)
    return int(math.ceil(x / p) * p)


def round_lr(lr):
    return float(f"{lr:.1g}")


def chinchilla_loss(N, D):
    c = CHINCHILLA
    return c["E"] + c["A"] / N ** c["alpha"] + c["B"] / D ** c["beta"]


def reference_lr(N, tokens_per_iter=None):
    """(lr, how, lr for the size alone): GPT-3 Table 2.1 interpolated in log-log at N params; for smaller batches
    than GPT-3's, scaled by sqrt(batch / GPT-3 batch), Adam's square-root rule (Malladi et al. 2022)."""
    sizes = np.log([r[0] for r in GPT3_LR])
    lrs = np.log([r[1] for r in GPT3_LR])
    x = math.log(max(N, 1.0))
    if x <= sizes[0]:
        lr = math.exp(lrs[0] + (x - sizes[0]) * (lrs[1] - lrs[0]) / (sizes[1] - sizes[0]))
        lr = min(lr, LR_REF_MAX)
    else:
        lr = math.exp(float(np.interp(x, sizes, lrs)))
    size_lr = lr
    batch = float(np.interp(x, sizes, [r[2] for r in GPT3_LR]))
    how = f"GPT-3 table at {si(N)} params: {lr:.2g}"
    if tokens_per_iter and tokens_per_iter < batch:
        lr *= math.sqrt(tokens_per_iter / batch)
        how += f", x sqrt({si(tokens_per_iter)}/{si(batch)} tokens per batch) = {lr:.2g}"
    return lr, how, size_lr


def train_memory_gb(N, n_layer, n_embd, block_size, micro_batch, vocab, chunked=False):
    tokens = micro_batch * block_size
    logits = min(tokens, LOSS_CHUNK_TOKENS) if chunked else tokens
    return (BYTES_PER_PARAM * N + ACT_BYTES * tokens * n_embd * n_layer + LOGIT_BYTES * logits * vocab) / 1e9


def model_shapes(vocab):
    """Candidate (n_layer, n_head, n_embd, params): heads of 64, n_embd / n_layer between 32 and 100 (GPT-2's
    shapes are 33-64; Kaplan et al. 2020 find loss insensitive to shape over that range)."""
    out = []
    for L in (4, 6, 8, 12, 16, 24, 32, 36, 48):
        for h in (4, 6, 8, 10, 12, 16, 20, 24, 25, 32):
            d = 64 * h
            if 32 <= d / L <= 100:
                out.append((L, h, d, F.count_params(L, d, vocab)))
    return sorted(out, key=lambda t: t[3])


def bigger_model(f):
    """The next run's model for the same compute: Chinchilla-optimal size (capped by GPU memory), its iters,
    micro-batch and LR, and the loss to expect; None if it cannot be worked out or is not bigger."""
    N, tpi, seen = v(f, "num_params"), v(f, "tokens_per_iter"), v(f, "tokens_seen")
    L_obs = v(f, "last_val_loss") or v(f, "last_train_loss")
    if not (N and tpi and seen and L_obs):
        return None
    D = max(seen, (v(f, "max_iters") or 0) * tpi)
    C = 6 * N * D
    n_opt = math.sqrt(C / (6 * COMPUTE_OPTIMAL_TPP))
    vocab = v(f, "vocab_size") or 50304
    block = v(f, "block_size") or 1024
    batch = v(f, "batch_size") or 12
    mem = v(f, "gpu_memory_gb")
    chunked = v(f, "format") == "plateau"
    pick = None
    for L, h, d, n in model_shapes(vocab):
        if n <= n_opt and n > 1.2 * N:
            b = _micro_batch(n, L, d, block, batch, vocab, mem, chunked)
            if b:
                pick = (L, h, d, n, b)
    if pick is None:
        return None
    L, h, d, n, b = pick
    D2 = C / (6 * n)
    iters = steps_to(D2 / tpi, v(f, "eval_interval"))
    loss = L_obs + chinchilla_loss(n, D2) - chinchilla_loss(N, D)
    loss_same_iters = L_obs + chinchilla_loss(n, D) - chinchilla_loss(N, D)
    lr, how, _ = reference_lr(n, tpi)
    accum = max(1, round(tpi / (b * block)))
    return {"n_layer": L, "n_head": h, "n_embd": d, "params": n, "micro_batch": b, "accum": accum, "iters": iters,
            "tokens": D2, "loss": loss, "loss_same_iters": loss_same_iters, "lr": round_lr(lr), "lr_how": how,
            "n_opt": n_opt, "compute": C, "D": D, "mem": mem,
            "mem_gb": train_memory_gb(n, L, d, block, b, vocab, chunked)}


def _micro_batch(n, L, d, block, batch, vocab, mem, chunked):
    """Largest power-of-two micro-batch <= the run's that fits `mem` GB (the run's own when memory is unknown)."""
    if not mem:
        return batch
    b = 2 ** int(math.log2(max(batch, 1)))
    while b >= 1:
        if train_memory_gb(n, L, d, block, b, vocab, chunked) <= MEM_USABLE * mem:
            return b
        b //= 2
    return None


def _finite_iters(s):
    """Iter numbers and losses before the first non-finite loss."""
    bad = np.flatnonzero(~np.isfinite(s.loss))
    end = bad[0] if bad.size else s.loss.size
    return s.it[:end], s.loss[:end]


def _val_rise(f, s):
    """Val's rise from its minimum: dict(best_step, best, last, rise, z, after, persistent) or None."""
    m = np.isfinite(s.val)
    if m.sum() < OVERFIT_MIN_EVALS:
        return None
    x, y = s.step[m], s.val[m]
    k = int(np.argmin(y))
    se = v(f, "eval_se")
    if se is None or se <= 0 or k == y.size - 1:
        return None
    # train.py's evals reuse fixed batches: two evals differ by the model alone, so the noise of their
    # difference is val's scatter about a smooth curve (model jitter), not the batch-sampling se
    scatter = v(f, "eval_scatter")
    if s.fmt == "plateau" and scatter and scatter < se:
        se = scatter
    d = math.sqrt(2) * se
    after = y[k + 1:]
    rise = float(y[-1] - y[k])
    # persistent: the last two evals both above the minimum by a standard error of a difference (one noisy
    # last eval is not a rise), and no eval since the minimum came back below it
    persistent = after.size >= 2 and bool(np.all(after[-2:] > y[k] + d))
    return {"best_step": int(x[k]), "best": float(y[k]), "last": float(y[-1]), "rise": rise, "z": rise / d,
            "after": int(after.size), "persistent": persistent, "se": se, "last_step": int(x[-1]),
            "above": int(np.sum(after > y[k] + d))}


def _overfit_rise(f, s):
    """_val_rise's result when val rose beyond noise and stayed up (the overfitting signal), else None."""
    r = _val_rise(f, s)
    return r if r and r["z"] > OVERFIT_SE_MULT and r["persistent"] else None


def _rose_back(f, s):
    """(iter, low, value, ref, what, last iter, last value) where a loss series that had fallen well below its
    reference (ln(vocab), else its own first value) comes back above it; None if it never does."""
    lnv = v(f, "ln_vocab")
    it, loss = _finite_iters(s)
    vm = np.isfinite(s.val)
    for x, y, noise, what in ((it, loss, v(f, "iter_loss_noise"), "iter loss"),
                              (s.step[vm], s.val[vm], v(f, "eval_se"), "val loss")):
        if y.size < 5 or (lnv is None and x[0] > F.INITIAL_MAX_ITER):
            continue
        ref = lnv if lnv is not None else float(y[0])
        # the noise of the run while it learned: a late-window estimate that takes in the blow-up is the blow-up's
        below = (y[1:] < ref) & (y[:-1] < ref)
        d = np.diff(y)[below]
        learning = F.robust_sigma(d) / math.sqrt(2) if d.size >= 4 else None
        noise = min((x for x in (noise, learning) if x is not None), default=0)
        low = np.flatnonzero(y < min(DIVERGE_MARGIN * ref, ref - DIVERGE_NOISE * noise))
        if not low.size:
            continue
        after = y[low[0]:]
        w = min(5, after.size)
        med = np.median(np.lib.stride_tricks.sliding_window_view(after, w), axis=1)
        above = np.flatnonzero(med > ref)
        if above.size:
            j = above[0]  # the first window whose median is above: the blow-up is its first point above
            k = low[0] + j + int(np.argmax(after[j:j + w] > ref))
            return int(x[k]), float(np.min(after)), float(med[j]), ref, what, int(x[-1]), float(y[-1])
    return None


def _trend(x, y):
    ts, mk = F.theil_sen(x, y), F.mann_kendall(x, y)
    return (ts, mk) if ts and mk else (None, None)


def _spikes(f, s):
    """Upward loss jumps by robust z-score: list of (iter, jump, z, recovered)."""
    it, loss = _finite_iters(s)
    if loss.size < 12:
        return [], None
    d = np.diff(loss)
    start = F.fit_start(v(f, "iters_done"), v(f, "warmup_iters"))
    late = d[it[1:] >= start]
    ref = late if late.size >= 10 else d
    center = float(np.median(ref))
    sigma = F.robust_sigma(ref)
    if not sigma:
        return [], None
    # batch noise in nats shrinks with the loss (0.2 at a loss of 6, 0.002 at 0.02 once a small set is memorised):
    # each jump is measured against the noise around it too, never below the late noise
    w = min(2 * SPIKE_WINDOW + 1, d.size)
    win = np.lib.stride_tricks.sliding_window_view(d, w)[np.clip(np.arange(d.size) - w // 2, 0, d.size - w)]
    med = np.median(win, axis=1)
    local = F.MAD_TO_SIGMA * np.median(np.abs(win - med[:, None]), axis=1)
    noise = np.maximum(local, sigma)
    z = (d - np.where(local > sigma, med, center)) / noise
    out = []
    for k in np.flatnonzero(z > SPIKE_Z):
        if k == 0:
            continue  # the first logged loss (iter 0) is at initialisation
        pre = loss[k]
        nxt = loss[k + 2:k + 2 + SPIKE_RECOVERY]
        recovered = bool(nxt.size and np.any(nxt <= pre + 3 * noise[k] / math.sqrt(2)))
        out.append((int(it[k + 1]), float(d[k]), float(z[k]), recovered))
    return out, sigma


def _flat(f):
    """(flat, why, within_noise): the recent trend not significantly down (within noise), or a doubling of the run
    gaining < 3% of the loss (flattening)."""
    L = v(f, "last_val_loss") or v(f, "last_train_loss")
    g2 = v(f, "gain_per_doubling")
    tr = f.get("val_trend") or {}
    last = v(f, "iters_done") or 0
    covers = last > 0 and (last - tr.get("first_step", last)) >= FLAT_MIN_COVER * last
    # not significant, yet a slope that would gain more than a flattening curve does over the window is a
    # noisy fall (too few or too noisy points), not a plateau
    slope, window = tr.get("value"), last - tr.get("first_step", last)
    noisy_fall = slope is not None and L and -slope / 1000 * window > CAPACITY_FLAT_GAIN * L
    if slope is not None and covers and (tr.get("p", 1) >= TREND_P or slope >= 0) and not noisy_fall:
        return True, f"recent slope {tr['value']:+.3g} nats/1k iters is not significantly down (p = {tr['p']:.2g})", \
            True
    if g2 is not None and L and g2 / L < CAPACITY_FLAT_GAIN:
        return True, (f"the fitted curve gains {g2:.3g} nats ({g2 / L:.1%}) per doubling of the run, under "
                      f"{CAPACITY_FLAT_GAIN:.0%}"), False
    return False, "", False


# ---------------------------------------------------------------- detectors


def detect_divergence(f, s):
    bad, bad_val = ~np.isfinite(s.loss), s.eval_bad
    ev, changes = [], {}
    lr, dtype = v(f, "learning_rate"), sv(f, "dtype")
    region = None
    if bad.any() or bad_val.any():
        first = int(s.it[bad][0]) if bad.any() else int(s.step[bad_val][0])
        fin = np.flatnonzero(np.isfinite(s.loss) & (s.it < first))
        if fin.size:
            ev.append(f"last finite loss {s.loss[fin[-1]]:.4f} at iter {int(s.it[fin[-1]])}; loss is nan/inf from "
                      f"iter {first} on ({int(bad.sum())} of {bad.size} iter lines)")
        else:
            ev.append(f"loss is nan/inf from iter {first} on ({int(bad.sum())} of {bad.size} iter lines)")
        recovered = bool(bad.any() and np.isfinite(s.loss[np.flatnonzero(bad)[-1]:]).any())
        if recovered:
            ev.append(f"finite again by iter {int(s.it[np.isfinite(s.loss) & (s.it > first)][0])}: skipped steps "
                      "(GradScaler) rather than a dead run")
        ve = np.flatnonzero(np.isfinite(s.val) & (s.step <= first))
        if ve.size:
            ev.append(f"last eval before it: step {int(s.step[ve[-1]])}, val {s.val[ve[-1]]:.4f}")
        region = (first, int(max(np.nanmax(s.it) if s.it.size else first, first)))
        title = f"Training diverged: loss became nan/inf at iter {first}"
        severity, conf = ("warning", 0.7) if recovered else ("critical", 0.95)
    else:
        hit = _rose_back(f, s)
        if hit is None:
            return None
        first, low, at, ref, what, x_last, y_last = hit
        ev.append(f"{what} fell to {low:.4f}, then its running median rose back above {ref:.4f} "
                  f"({'ln(vocab), a uniform guess' if v(f, 'ln_vocab') else 'its value at the start'}) at iter "
                  f"{first:,}: {at:.4f}")
        ev.append(f"last {what} {y_last:.4f} at iter {x_last:,}")
        region = (first, x_last)
        title = f"Training diverged: the loss went back above {ref:.2f} at iter {first:,}"
        severity, conf = "critical", 0.9
    lr_at = None
    if np.isfinite(s.lr).any():
        k = np.flatnonzero(np.isfinite(s.lr) & (s.it <= region[0]))
        lr_at = float(s.lr[k[-1]]) if k.size else None
    if lr is not None:
        ev.append(f"learning_rate {lr:g}" + (f" (lr {lr_at:.3g} at the divergence)" if lr_at else "")
                  + (f", dtype {dtype}" if dtype else ""))
        new, why = lr / 2, "half"
        N = v(f, "num_params")
        table = reference_lr(N)[2] if N else None
        if table and new > LR_HIGH_MULT * table:
            new, why = table, f"the GPT-3 table's for {si(N)} params; half would still be {lr / 2 / table:.0f}x it"
        changes["learning_rate"] = round_lr(new)
        if v(f, "min_lr") is not None:
            changes["min_lr"] = round_lr(new / 10)
    if dtype == "float16":
        gpu = sv(f, "gpu") or ""
        from plateau import gpus
        row = gpus.lookup(gpu) if gpu else None
        if row and row.bf16:
            changes["dtype"] = "bfloat16"
            fix_dt = f"use dtype='bfloat16' ({row.name} supports it: same range as float32, no overflow)"
        else:
            fix_dt = ("float16 overflows where bfloat16 would not: use dtype='bfloat16' on Ampere or newer, else "
                      "dtype='float32' or keep float16 with a lower learning rate")
    else:
        fix_dt = "if training in float16, switch to bfloat16 (Ampere or newer)"
    if v(f, "grad_clip") == 0:
        changes["grad_clip"] = 1.0
    fix = (f"Resume from the last checkpoint before iter {region[0]} with "
           + (f"learning_rate={changes['learning_rate']:g} ({why})" if "learning_rate" in changes
              else "the learning rate halved") + f"; {fix_dt}; keep grad_clip=1.0")
    return Finding("divergence", severity, conf, title, ev, fix, changes,
                   "a finite loss that continues from the checkpoint's value; halving the LR costs little final loss "
                   "(the basin is flat within ~2x of the best LR)", region)


def _frozen(s):
    """(first iter, count, value) when the last FROZEN_MIN_LINES or more iter losses are one identical number."""
    it, loss = _finite_iters(s)
    if loss.size < FROZEN_MIN_LINES or loss.size < s.loss.size:
        return None
    same = loss == loss[-1]
    n = loss.size if same.all() else loss.size - 1 - int(np.flatnonzero(~same)[-1])
    return (int(it[-n]), n, float(loss[-1])) if n >= FROZEN_MIN_LINES else None


def detect_no_learning(f, s):
    frozen = _frozen(s)
    if frozen:
        start, n, value = frozen
        ev = [f"the iter loss is {value:g} on each of the last {n} logged iterations (from iter {start:,}): "
              "different batches cannot give one loss unless the output ignores the input"]
        lnv = v(f, "ln_vocab")
        if lnv and abs(value - lnv) < 0.01 * lnv:
            ev.append(f"ln(vocab) = {lnv:.4f}: the model predicts exactly uniformly")
        elif 0 < value < 20:
            ev.append(f"exp({value:g}) = {math.exp(value):,.0f}: a uniform guess over that many tokens")
        return Finding("no_learning", "critical", 0.9, f"No learning: the loss is frozen at {value:g} for {n} "
                       "iterations", ev, "Check for all-zero or masked logits, a zeroed or frozen model (every "
                       "parameter requires_grad, the optimizer holds them), an LR of 0, and that each step draws a new "
                       "batch", {}, "the loss changes from batch to batch and falls", (start, int(s.it[-1])))
    L0 = v(f, "initial_loss")
    last = v(f, "iters_done")
    if L0 is None or L0 <= 0 or not last or last < NO_LEARN_MIN_ITERS or last < (v(f, "warmup_iters") or 0):
        return None
    it, loss = _finite_iters(s)
    vals = s.val[np.isfinite(s.val)]
    if vals.size >= 2:
        now, what = float(vals[-1]), "val"
    elif loss.size >= 6:
        now, what = float(np.median(loss[-5:])), "iter loss (median of the last 5)"
    else:
        return None
    drop = L0 - now
    if abs(drop) >= NO_LEARN_REL * L0:
        return None  # it learned, or it got worse: divergence, not a lack of learning
    lnv = v(f, "ln_vocab")
    scratch = lnv is not None and L0 > 0.9 * lnv
    lr = v(f, "learning_rate")
    ev = [f"initial loss {L0:.4f}, {what} now {now:.4f} after {last:,} iters: {drop:+.4f} ({drop / L0:+.1%})"]
    if lnv:
        ev.append(f"ln(vocab) = {lnv:.4f}: " + ("the model still predicts about uniformly" if scratch else
                                                "the run started from a trained model"))
    if lr is not None:
        ev.append(f"learning_rate {lr:g}, lr now {g(v(f, 'lr_last'))}")
    changes = {}
    N = v(f, "num_params")
    if lr is not None and N:
        ref, how, _ = reference_lr(N, v(f, "tokens_per_iter"))
        if lr < ref / 2:
            changes = {"learning_rate": round_lr(ref), "min_lr": round_lr(ref / 10)}
            ev.append(f"reference LR {ref:.2g} ({how})")
    fix = ("Check that the LR is not ~0 (warmup_iters, decay_lr), that the loss is computed on shifted targets and "
           "that the optimizer steps (grad_clip > 0, no skipped steps)"
           + (f"; raise learning_rate to {changes['learning_rate']:g}" if changes else ""))
    return Finding("no_learning", "critical" if scratch else "warning", 0.8 if scratch else 0.55,
                   f"No learning: the loss is within {NO_LEARN_REL:.0%} of its initial {L0:.3f} after {last:,} iters",
                   ev, fix, changes, "the loss should fall well below ln(vocab) within the first few hundred iters",
                   (0, int(last)))


def detect_overfitting(f, s):
    r = _overfit_rise(f, s)
    tm = np.isfinite(s.train)
    ev, region = [], None
    if r:
        after = tm & (s.step >= r["best_step"])
        tr_best = s.train[tm & (s.step == r["best_step"])]
        if after.sum() >= 2 and tr_best.size:
            tr_drop = float(tr_best[0] - s.train[after][-1])
            if tr_drop > OVERFIT_SE_MULT * math.sqrt(2) * (v(f, "train_se") or r["se"]):
                rel = r["rise"] / r["best"] if r["best"] > 0 else math.inf
                ev = [f"val bottomed at {r['best']:.4f} (step {r['best_step']:,}) and is {r['last']:.4f} at step "
                      f"{r['last_step']:,}: +{r['rise']:.4f}, {r['z']:.1f} standard errors of a difference "
                      f"(eval noise {r['se']:.3g}); {r['above']} of the {r['after']} evals since are above it "
                      "beyond noise",
                      f"eval-mode train kept falling over the same evals: {tr_best[0]:.4f} -> "
                      f"{s.train[after][-1]:.4f} ({-tr_drop:+.4f})"]
                gap = v(f, "val_train_gap")
                if gap is not None:
                    ev.append(f"val - train gap now {gap:+.4f}")
                severity = "critical" if rel > OVERFIT_CRIT_REL else "warning"
                conf = min(0.95, 0.6 + 0.05 * r["z"])
                region = (r["best_step"], r["last_step"])
                return _overfit_finding(f, r["best_step"], r["best"], severity, conf, ev, region,
                                        f"Overfitting: val rose {r['rise']:.3f} ({rel:.1%}) from its best "
                                        f"{r['best']:.4f} at step {r['best_step']:,} while train kept falling")
    return _gap_widening(f, s) or _memorised(f, s)


def _gap_trend(f, s):
    """The val - train gap widening beyond noise over the run's second half: dict(x, gap, ts, mk, widen, se_gap,
    vts, vmk, tts, tmk, val_falling, val_rising, memorising) or None. Memorising: val still falls, but train falls
    MEMORISE_RATIO times faster."""
    tm = np.isfinite(s.train)
    both = np.isfinite(s.val) & tm
    last = v(f, "iters_done")
    if both.sum() < 6 or not last:
        return None
    half = both & (s.step >= last / 2)
    if half.sum() < 4:
        return None
    x, gap = s.step[half], (s.val - s.train)[half]
    ts, mk = _trend(x, gap)
    se = v(f, "eval_se")
    if not ts or se is None:
        return None
    widen = ts[0] * (x[-1] - x[0])
    se_gap = math.sqrt(se**2 + (v(f, "train_se") or se) ** 2)
    if se_gap <= 0 or not (ts[2] > 0 and mk[1] < GAP_P and widen > OVERFIT_SE_MULT * se_gap):
        return None
    vts, vmk = _trend(x, s.val[half])
    tts, tmk = _trend(x, s.train[half])
    val_falling = vts is not None and vts[3] < 0 and vmk[1] < TREND_P
    memorising = (val_falling and tts is not None and tts[3] < 0 and tmk[1] < TREND_P
                  and tts[0] <= MEMORISE_RATIO * vts[0])
    return dict(x=x, gap=gap, ts=ts, mk=mk, widen=widen, se_gap=se_gap, vts=vts, vmk=vmk, tts=tts,
                val_falling=val_falling, val_rising=vts is not None and vts[2] > 0 and vmk[1] < TREND_P,
                memorising=memorising)


def _gap_widening(f, s):
    """The val - train gap widening beyond noise while val stalls (or gains a fraction of what train does)."""
    g = _gap_trend(f, s)
    if not g:
        return None
    x, gap, ts, mk, vts, vmk = g["x"], g["gap"], g["ts"], g["mk"], g["vts"], g["vmk"]
    ev = [f"val - train gap widened from {gap[0]:+.4f} to {gap[-1]:+.4f} over steps {int(x[0]):,}-{int(x[-1]):,}: "
          f"Theil-Sen {ts[0] * 1000:+.3g}/1k iters (95% CI {ts[2] * 1000:+.3g} to {ts[3] * 1000:+.3g}), Mann-Kendall "
          f"p = {mk[1]:.2g}; {g['widen'] / g['se_gap']:.1f} standard errors of the gap ({g['se_gap']:.3g})"]
    if g["memorising"]:
        ev.append(f"train falls {g['tts'][0] / vts[0]:.1f}x faster than val ({g['tts'][0] * 1000:+.3g} vs "
                  f"{vts[0] * 1000:+.3g}/1k iters): most of what it learns no longer carries to held-out text, "
                  "and val will turn up")
    elif g["val_falling"]:
        ev.append(f"val is still falling ({vts[0] * 1000:+.3g}/1k iters): the model is starting to memorise, "
                  "not yet losing ground")
    else:
        ev.append(f"val is {'rising' if g['val_rising'] else 'flat'} over the same evals (slope "
                  f"{vts[0] * 1000:+.3g}/1k iters, p = {vmk[1]:.2g}) while train falls" if vts
                  else "val is flat while train falls")
    best, bstep = v(f, "best_val_loss"), v(f, "best_val_step")
    early = g["val_falling"] and not g["memorising"]
    return _overfit_finding(f, int(bstep), best, "info" if early else "warning",
                            0.45 if early else 0.5 if g["memorising"] else 0.6, ev, (int(x[0]), int(x[-1])),
                            f"The val - train gap is widening ({gap[0]:+.3f} -> {gap[-1]:+.3f})"
                            + (": early memorisation" if early else ": memorisation, val gains a fraction of train's"
                               if g["memorising"] else f" while val {'rises' if g['val_rising'] else 'stalls'}: "
                               "overfitting"))


def _memorised(f, s):
    """Train far below val at the last eval while val no longer improves: too few evals for a trend, but a
    random split of one corpus cannot produce a gap that size."""
    both = np.flatnonzero(np.isfinite(s.val) & np.isfinite(s.train))
    if both.size < 2:
        return None
    k = both[-1]
    val, train, step = float(s.val[k]), float(s.train[k]), int(s.step[k])
    best, bstep = v(f, "best_val_loss"), v(f, "best_val_step")
    if val <= 0 or (val - train) < OVERFIT_GAP_REL * val or best is None or bstep is None or bstep >= step:
        return None
    ev = [f"at step {step:,} train is {train:.4f} and val {val:.4f}: train is {1 - train / val:.0%} below val; a "
          f"random split of one corpus gives a few percent, so the model recites its training text",
          f"val is past its best {best:.4f} (step {int(bstep):,}): {val - best:+.4f} since"]
    return _overfit_finding(f, int(bstep), best, "warning", 0.55, ev, (int(bstep), step),
                            f"Memorisation: train {train:.3f} vs val {val:.3f} and val past its best: overfitting")


def _overfit_finding(f, best_step, best, severity, conf, ev, region, title):
    interval = v(f, "eval_interval")
    stop = steps_to(best_step * 1.1 if best_step else 0, interval) if best_step else None
    if stop and stop >= (v(f, "iters_done") or math.inf):
        stop = best_step  # 10% past the best is beyond the end of this run: its best step is what is known
    changes = {}
    if stop and (v(f, "max_iters") or math.inf) > stop:
        changes.update(max_iters=stop, lr_decay_iters=stop)
    drop = v(f, "dropout")
    if drop is not None and drop < 0.2:
        changes["dropout"] = 0.2
    ep = v(f, "epochs")
    if ep:
        ev.append(f"{ep:.1f} epochs over {si(v(f, 'dataset_tokens'))} dataset tokens")
    fix = (f"Keep the checkpoint from step {best_step:,} (val {best:.4f}); next run: "
           + (f"max_iters = lr_decay_iters = {stop:,} so the LR anneals where val is best" if "max_iters" in changes
              else "stop near the best step")
           + ("; dropout 0.2" if "dropout" in changes else "")
           + "; for lower val: more data (more unique tokens) or a smaller model")
    return Finding("overfitting", severity, conf, title, ev, fix, changes,
                   f"val about {best:.4f} or a little lower (the LR anneals by then) in "
                   f"{(stop or best_step) / max(v(f, 'iters_done') or 1, 1):.0%} of this run's iterations", region)


def detect_data_repetition(f, s):
    ep, U = v(f, "epochs"), v(f, "dataset_tokens")
    if ep is None or ep <= 1 or not U:
        return None
    R = ep - 1
    worth = (1 + REPEAT_DECAY * (1 - math.exp(-R / REPEAT_DECAY))) / ep  # effective / seen (Muennighoff et al.)
    seen = v(f, "tokens_seen")
    ev = [f"{si(seen)} tokens seen over {si(U)} dataset tokens: {ep:.1f} epochs ({f['dataset_tokens']['source']})",
          f"repeated data is worth {worth:.0%} of fresh data at this many epochs (Muennighoff et al. 2023, "
          f"R*_D = {REPEAT_DECAY})"]
    tpi = v(f, "tokens_per_iter")
    if tpi:
        ev.append(f"epoch 4 ended at iter {int(4 * U / tpi):,}" if ep > 4 else f"one epoch is {int(U / tpi):,} iters")
    if ep <= DATA_EPOCHS_WARN:
        return Finding("data_repetition", "info", 0.6, f"{ep:.1f} epochs over the data: still nearly as good as "
                       "fresh data", ev, "Nothing needed below ~4 epochs; beyond it, add data", {},
                       "", None)
    sev = "critical" if ep > DATA_EPOCHS_CRIT else "warning"
    need = seen / DATA_EPOCHS_WARN if seen else None
    fix = (f"Train on more unique tokens: {si(need)} for this run's {si(seen)} tokens at <= 4 epochs "
           f"({need / U:.1f}x the data now)" if need else "Train on more unique tokens")
    fix += "; or stop at 4 epochs and spend the compute on a smaller model trained less"
    start = int(4 * U / tpi) if tpi else None
    return Finding("data_repetition", sev, min(0.9, 0.55 + 0.1 * math.log2(ep / DATA_EPOCHS_WARN)),
                   f"Data repetition: {ep:.1f} epochs over {si(U)} tokens; repeats are worth {worth:.0%} of fresh "
                   "data", ev, fix, {},
                   f"with {si(need)} unique tokens the same run sees fresh data and keeps improving as scaling laws "
                   "predict" if need else "", (start, int(v(f, "iters_done"))) if start else None)


def detect_capacity(f, s):
    E, g2 = v(f, "loss_asymptote"), v(f, "gain_per_doubling")
    L = v(f, "last_val_loss") or v(f, "last_train_loss")
    if not L or _overfit_rise(f, s):
        return None  # val rising: overfitting, not a model too small for its data
    asym = f["loss_asymptote"]
    lo, hi = asym.get("E_lo", E), asym.get("E_hi", E)
    if E is None or g2 is None or lo is None or lo < 0 or hi - lo > FIT_E_RANGE_REL * L:
        return _saturated(f, s, L)  # no fit, or one that cannot say where the curve ends
    g = _gap_trend(f, s)
    if g and g["memorising"]:
        return None  # train racing ahead of val: the model has capacity to spare, the data is what runs out
    tr = f.get("val_trend") or {}
    if tr.get("value") is not None and tr["value"] > 0 and tr.get("p", 1) < TREND_P:
        return None
    se = v(f, "eval_se") or 0
    fit = asym.get("fit") or {}
    last = v(f, "iters_done")
    k = v(f, "tokens_per_iter") if fit.get("x") == "tokens" else 1
    x0 = (F.fit_start(last, v(f, "warmup_iters"))) * (k or 1)
    fit_drop = fit["E"] + fit["A"] * x0 ** -fit["alpha"] - (fit["E"] + fit["A"] * (last * (k or 1)) ** -fit["alpha"])
    if se and fit_drop < FIT_DROP_SE * se:
        return None  # the evals are too noisy for the fit to say where the curve is heading
    tpp = v(f, "tokens_per_param")
    if tpp is not None and tpp < CAPACITY_MIN_TPP:
        return None
    rel = g2 / L
    flat = rel < CAPACITY_FLAT_GAIN
    ev = [f"fit L = E + A x^-alpha to {asym.get('points')} {asym.get('series', 'evals')}: asymptote E = {E:.3f} "
          f"(95% range {asym.get('E_lo', E):.3f}-{asym.get('E_hi', E):.3f}), alpha {fit.get('alpha', 0):.2f}; loss "
          f"now {L:.4f}, at most {v(f, 'remaining_gain') or 0:.3f} left to gain at this size",
          f"doubling the run would gain {g2:.3f} nats ({rel:.1%} of the loss)"]
    if tr.get("value") is not None:
        ev.append(f"recent slope {tr['value']:+.3g} nats/1k iters (95% CI {tr['ci'][0]:+.3g} to {tr['ci'][1]:+.3g})")
    gap = v(f, "val_train_gap")
    if gap is not None:
        z = (f.get("val_train_gap") or {}).get("z")
        zs = f", {z:+.1f} se" if z is not None else ""
        ev.append(f"val - train gap {gap:+.4f}{zs}, widening beyond noise: some of the flattening is memorisation"
                  if g else f"train and val move together (gap {gap:+.4f}{zs}): not overfitting"
                  + ("; val below train is the split, not dropout (both in eval mode)" if gap < 0 else ""))
    N = v(f, "num_params")
    if tpp is not None:
        ev.insert(0, f"{si(v(f, 'tokens_seen'))} tokens seen by a {si(N)}-parameter model: {tpp:.0f} tokens per "
                     f"parameter, {tpp / COMPUTE_OPTIMAL_TPP:.1f}x the compute-optimal ~20 (Hoffmann et al. 2022)")
    if tpp is not None and tpp >= CAPACITY_TPP and flat:
        sev, conf = "warning", 0.8 if rel < CAPACITY_FLAT_GAIN / 2 else 0.7
    elif tpp is not None and tpp >= CAPACITY_TPP:
        sev, conf = "info", 0.5
    elif flat and tpp is not None:
        sev, conf = "info", 0.45
    elif flat and (asym.get("points") or 0) >= 8:
        sev, conf = "warning", 0.4
        ev.append("model size and tokens per iteration unknown: pass --config to check tokens per parameter "
                  "(and --meta for data repetition, the other cause of a flattening curve)")
    else:
        return None
    fix, changes, expect = _capacity_fix(f, L)
    title = (f"Model capacity: {si(N)} params at {tpp:.0f} tokens/param; the loss is flattening (now {L:.3f}, "
             f"fitted floor {E:.3f})" if tpp is not None else
             f"The loss is flattening (now {L:.3f}, fitted floor {E:.3f}): likely model capacity")
    if not flat:
        title = f"Past compute-optimal ({tpp:.0f} tokens/param): a bigger model would use this compute better"
    return Finding("capacity", sev, conf, title, ev, fix, changes, expect, _late_region(f, s))


def _saturated(f, s, L):
    """A curve already flat, so no saturating fit to extrapolate: val flat within noise over the second half of
    the run, to a bound under a flattening curve's gain, and train flat with it (the model fits its own
    training data no better: not overfitting, not data)."""
    tr = f.get("val_trend") or {}
    last = v(f, "iters_done")
    if (tr.get("series") != "val" or tr.get("value") is None or (tr.get("points") or 0) < SATURATED_MIN_EVALS
            or not last):
        return None
    window = last - tr["first_step"]
    most = -tr["ci"][0] / 1000 * window  # the largest drop over the window the slope's 95% CI allows
    if window < FLAT_MIN_COVER * last or tr["ci"][1] < 0 or most >= CAPACITY_FLAT_GAIN * L:
        return None
    m = np.isfinite(s.train) & (s.step >= tr["first_step"])
    ts, mk = _trend(s.step[m], s.train[m]) if m.sum() >= 4 else (None, None)
    if ts is None or (ts[3] < 0 and mk[1] < TREND_P):
        return None  # train still falling (or unknown) while val is flat: overfitting and data are the suspects
    ev = [f"val is flat over steps {tr['first_step']:,}-{last:,} ({tr['points']} evals, {window / last:.0%} of the "
          f"run): slope {tr['value']:+.3g} nats/1k iters, 95% CI {tr['ci'][0]:+.3g} to {tr['ci'][1]:+.3g}, so at most "
          f"{max(most, 0):.3g} nats ({max(most, 0) / L:.2%}) over that stretch",
          f"eval-mode train is flat too ({ts[0] * 1000:+.3g}/1k iters, p = {mk[1]:.2g}): the model fits its own "
          "training data no better, so it is not overfitting and more data would not help"]
    gap = v(f, "val_train_gap")
    if gap is not None:
        ev.append(f"val - train gap {gap:+.4f}")
    fix, changes, expect = _capacity_fix(f, L)
    return Finding("capacity", "warning", 0.5, f"Saturated: the loss has been flat at {L:.3f} for {window / last:.0%} "
                   "of the run: likely model capacity", ev, fix + "; with a constant LR, a final decay finds the last "
                   "few percent first", changes, expect, (int(tr["first_step"]), int(last)))


def _capacity_fix(f, L):
    """(fix, changes, expect) of a capacity finding: the model that would use this compute, where known."""
    N = v(f, "num_params")
    b = bigger_model(f)
    changes, expect = {}, ""
    if b:
        changes = {"n_layer": b["n_layer"], "n_head": b["n_head"], "n_embd": b["n_embd"], "max_iters": b["iters"],
                   "lr_decay_iters": b["iters"], "learning_rate": b["lr"], "min_lr": round_lr(b["lr"] / 10)}
        if b["micro_batch"] != v(f, "batch_size"):
            changes.update(batch_size=b["micro_batch"], gradient_accumulation_steps=b["accum"])
        mem = (f", ~{b['mem_gb']:.1f} GB of the GPU's {b['mem']:g} GB at batch_size {b['micro_batch']}"
               if b["mem"] else " (pass --gpu to check it fits the GPU's memory)")
        fix = (f"Same compute ({b['compute']:.2g} FLOPs), compute-optimal size ~{si(b['n_opt'])}: n_layer "
               f"{b['n_layer']}, n_head {b['n_head']}, n_embd {b['n_embd']} = {si(b['params'])} params{mem}, for "
               f"{b['iters']:,} iters ({si(b['tokens'])} tokens), learning_rate {b['lr']:g} ({b['lr_how']})")
        expect = (f"val ~{b['loss']:.2f} in the same time instead of {L:.2f} (Chinchilla-style estimate: "
                  f"{L:.3f} + L({si(b['params'])}, {si(b['tokens'])}) - L({si(N)}, {si(b['D'])})); "
                  f"~{b['loss_same_iters']:.2f} for this run's {si(b['D'])} tokens ({b['params'] / N:.1f}x the "
                  "compute)")
        U = v(f, "dataset_tokens")
        if U and b["tokens"] / U > DATA_EPOCHS_WARN:
            expect += f"; needs {b['tokens'] / U:.1f} epochs of this data, so add data too"
    elif N:
        fix = "A bigger model: the compute-optimal size for this run's compute is " + (
            f"~{si(math.sqrt(6 * N * (v(f, 'tokens_seen') or 0) / (6 * COMPUTE_OPTIMAL_TPP)))}" if v(
                f, "tokens_seen") else "larger") + "; pass --gpu to size it to the GPU's memory"
    else:
        fix = ("A bigger model (more n_layer / n_embd) is what lowers a flattened curve; pass --config"
               + ("" if v(f, "gpu_memory_gb") else " and --gpu") + " for a size and the loss to expect")
    return fix, changes, expect


def _late_region(f, s):
    last = v(f, "iters_done")
    tr = f.get("val_trend") or {}
    return (int(tr.get("first_step", last / 2)), int(last)) if last else None


def detect_lr_too_high(f, s):
    lr, N = v(f, "learning_rate"), v(f, "num_params")
    ref = how = size_ref = None
    if lr is not None and N:
        ref, how, size_ref = reference_lr(N, v(f, "tokens_per_iter"))
    ev, signals = [], []
    spikes, _ = _spikes(f, s)
    if len(spikes) >= SPIKE_WARN or any(not r for *_, r in spikes):
        signals.append(f"{len(spikes)} loss spikes (robust z > {SPIKE_Z:g}), first at iter {spikes[0][0]:,}")
    bad = ~np.isfinite(s.loss)
    if bad.any():
        signals.append(f"loss went nan/inf at iter {int(s.it[bad][0]):,}")
    rising = _train_rising(f, s)
    if rising:
        signals.append(rising)
    osc = _oscillation(f, s)
    if osc:
        signals.append(osc)
    above = _above_uniform(f, s)
    if above:
        signals.append(above)
    if ref is not None:
        ev.append(f"learning_rate {lr:g} is {lr / ref:.1f}x the reference {ref:.2g} ({how})")
    ev += signals
    if ref is not None and lr > LR_HIGH_MULT * size_ref:  # far above even before the batch-size correction
        # Below GPT-3's smallest model (125M, 10% slack for nanoGPT's 124M) the table is extrapolated and
        # tiny models train well far above it: there, without a symptom in the curve, it is only a hint
        in_table = N >= 0.9 * GPT3_LR[0][0]
        sev, conf = ("warning", 0.55 + 0.1 * len(signals)) if signals or in_table else ("info", 0.35)
        ev[0] += f"; {lr / size_ref:.1f}x the table's {size_ref:.2g} for this size at GPT-3's batch"
        if not signals:
            ev.append("no spikes, rises or oscillation in this log: if the curve is the goal, a short sweep "
                      "(x0.5, x0.25) settles it")
    elif signals and ref is not None and lr > ref:
        sev, conf = "warning", 0.5 + 0.1 * len(signals)
    elif (rising or osc) and ref is None:
        sev, conf = "warning", 0.4
        ev.append("learning rate unknown: pass --config to compare it with the GPT-3 table")
    elif signals and ref is not None:
        sev, conf = "info", 0.3
        ev.append("the LR is at or below the reference: look at precision (float16) and data for these symptoms")
    else:
        return None
    # the table's LR for the size, not the batch-corrected reference: the square-root rule is a rough guide,
    # and at the small batches of small runs it points 10-50x below what trains best
    target = min(lr / 2, size_ref) if ref is not None else (lr / 2 if lr else None)
    changes = {"learning_rate": round_lr(target), "min_lr": round_lr(target / 10)} if target else {}
    if changes and v(f, "max_iters") and (v(f, "warmup_iters") or 0) < 0.02 * v(f, "max_iters"):
        changes["warmup_iters"] = int(0.02 * v(f, "max_iters"))
    fix = (f"Lower learning_rate to {changes['learning_rate']:g}" if changes else "Lower the learning rate 2x") + (
        f" and lengthen warmup to {changes['warmup_iters']:,} iters" if "warmup_iters" in changes else "") + \
        "; keep grad_clip=1.0"
    return Finding("lr_too_high", sev, conf, "Learning rate too high" + (f": {lr:g} vs ~{ref:.2g} for "
                   f"{si(N)} params at this batch" if ref else ": the loss rises or oscillates after warmup"), ev, fix,
                   changes, "a smoother curve without spikes or rises; final loss within noise of the best LR or "
                   "lower (the LR basin is flat within ~2x)", _late_region(f, s))


def _train_rising(f, s):
    """Train (iter or eval-mode) loss rising significantly after warmup, by more than 1% of the loss."""
    last = v(f, "iters_done")
    if not last:
        return None
    start = F.fit_start(last, v(f, "warmup_iters"))
    it, loss = _finite_iters(s)
    m = it >= start
    if m.sum() >= 16:
        x, y = F.bin_median(it[m], loss[m], max_points=max(8, int(m.sum()) // 4))
        what = "iter loss"
    else:
        m = np.isfinite(s.train) & (s.step >= start)
        if m.sum() < 5:
            return None
        x, y, what = s.step[m], s.train[m], "eval train loss"
    k = int(np.argmin(y))
    if k >= y.size - 3:
        return None
    ts, mk = _trend(x[k:], y[k:])
    if not ts or ts[2] <= 0 or mk[1] >= TREND_P:
        return None
    rise = ts[0] * (x[-1] - x[k])
    if rise < RISE_MIN_REL * y[k]:
        return None
    return (f"{what} rose from its low {y[k]:.4f} at iter {int(x[k]):,}: Theil-Sen {ts[0] * 1000:+.3g}/1k iters "
            f"(95% CI {ts[2] * 1000:+.3g} to {ts[3] * 1000:+.3g}), p = {mk[1]:.2g}")


def _above_uniform(f, s):
    """The loss far above a uniform guess (ln(vocab), else the first loss) after the first iteration: the updates
    themselves made the model worse than knowing nothing, which no data noise does."""
    ref = v(f, "ln_vocab") or v(f, "initial_loss")
    it, loss = _finite_iters(s)
    m = it > 0
    if not ref or not m.any():
        return None
    k = int(np.argmax(np.where(m, loss, -np.inf)))
    if loss[k] <= ABOVE_UNIFORM_MULT * ref:
        return None
    return (f"iter loss reached {loss[k]:.4g} at iter {int(it[k]):,}, {loss[k] / ref:.1f}x "
            f"{'ln(vocab), a uniform guess' if v(f, 'ln_vocab') else 'the first loss'} ({ref:.3g}): the steps "
            "overshoot")


def _oscillation(f, s):
    se = v(f, "eval_se")
    m = np.isfinite(s.val)
    if se is None or m.sum() < 6:
        return None
    if _overfit_rise(f, s):
        return None
    x, y = s.step[m][1:], s.val[m][1:]
    d = np.diff(y)
    lim = OSC_Z * math.sqrt(2) * se
    sig = np.sign(d) * (np.abs(d) > lim)
    reversals = int(np.sum((sig[1:] * sig[:-1]) < 0))  # a significant rise next to a significant fall
    if reversals < OSC_MIN_RISES:
        return None
    return (f"val reversed direction by more than {lim:.3g} ({OSC_Z:g} se of a difference) {reversals} times in "
            f"{d.size} evals, largest rise +{d.max():.4f} at step {int(x[1:][np.argmax(d)]):,}")


def detect_lr_too_low(f, s):
    lr, N = v(f, "learning_rate"), v(f, "num_params")
    if lr is None or not N:
        return None
    ref, how, _ = reference_lr(N, v(f, "tokens_per_iter"))
    ratio = ref / lr
    if ratio < LR_LOW_DIV:
        return None
    ev = [f"learning_rate {lr:g} is {ratio:.1f}x below the reference {ref:.2g} ({how})"]
    tr = f.get("val_trend") or {}
    g2, L = v(f, "gain_per_doubling"), v(f, "last_val_loss") or v(f, "last_train_loss")
    unsaturated = tr.get("value") is not None and tr["value"] < 0 and tr.get("p", 1) < TREND_P
    if unsaturated:
        ev.append(f"the loss is still falling steadily at the end ({tr['value']:+.3g} nats/1k iters, 95% CI "
                  f"{tr['ci'][0]:+.3g} to {tr['ci'][1]:+.3g}): slow progress, no saturation yet")
    if g2 is not None and L:
        ev.append(f"fitted gain per doubling of the run: {g2:.3f} nats ({g2 / L:.1%})")
    if not unsaturated and ratio < LR_LOW_STRONG_DIV:
        return None
    new = round_lr(min(ref, lr * 3))
    return Finding("lr_too_low", "warning", 0.6 if unsaturated else 0.45,
                   f"Learning rate too low: {lr:g} vs ~{ref:.2g} for {si(N)} params at this batch", ev,
                   f"Raise learning_rate to {new:g} (min_lr {round_lr(new / 10):g}); if it spikes, halve it",
                   {"learning_rate": new, "min_lr": round_lr(new / 10)},
                   "a faster early drop and a lower loss at the same iteration count", _late_region(f, s))


def detect_lr_schedule(f, s):
    lr, lo = v(f, "learning_rate"), v(f, "min_lr")
    dec, mx, last = v(f, "lr_decay_iters"), v(f, "max_iters"), v(f, "iters_done")
    sched = sv(f, "lr_schedule") or ""
    L = v(f, "last_val_loss") or v(f, "last_train_loss")
    flat, why, within_noise = _flat(f)
    ev, changes, problems, minor = [], {}, [], ["long tail at min_lr"]
    logged = s.lr[np.isfinite(s.lr)]
    constant = "constant" in sched or (logged.size >= 10 and np.ptp(logged[logged.size // 5:]) <=
                                       0.05 * np.max(logged))
    gain = COOLDOWN_GAIN * L if L else None
    interval = v(f, "eval_interval")
    if constant and flat and last:
        problems.append("constant")
        ev.append(f"the LR stays at {logged[-1] if logged.size else lr:.3g} ({sched or 'logged lr is flat'}) and {why}")
        stop = steps_to(1.25 * last, interval)
        changes.update(lr_schedule="wsd", wsd_decay_frac=0.2, max_iters=stop, decay_lr=True)
        if lr:
            changes["min_lr"] = round_lr(lr / 10)
    lr_last = v(f, "lr_last")
    if (not constant and lr and lr_last and flat and lr_last >= SCHED_HIGH_LR * lr and last
            and (dec or mx or 0) >= 2 * last):
        problems.append("plateau at high LR")
        if not within_noise:  # still falling, only slowly: the decay may simply not have come yet
            minor.append("plateau at high LR")
        ev.append(f"{why}, with the LR still at {lr_last:.3g} ({lr_last / lr:.0%} of peak) at iter {last:,}; the "
                  f"decay to {g(lo)} is scheduled until iter {int(dec or mx):,}")
        stop = steps_to(1.25 * last, interval)
        changes.update(lr_schedule="wsd", wsd_decay_frac=0.2, max_iters=stop, lr_decay_iters=stop)
    if "cosine" in sched and dec and mx and lr and lo is not None:
        end_lr = F.lr_at({"learning_rate": lr, "min_lr": lo, "warmup_iters": v(f, "warmup_iters") or 0,
                          "lr_decay_iters": dec}, mx)
        if end_lr > SCHED_END_MULT * max(lo, 1e-12) and dec > mx:
            problems.append("decay past the end")
            ev.append(f"lr_decay_iters {int(dec):,} > max_iters {int(mx):,}: the run ends at lr {end_lr:.3g}, "
                      f"{end_lr / max(lo, 1e-12):.1f}x min_lr {lo:g}, before the decay that gives the last drop")
            changes["lr_decay_iters"] = int(mx)
        elif dec < 0.75 * mx:
            ev.append(f"lr_decay_iters {int(dec):,} < max_iters {int(mx):,}: the last {1 - dec / mx:.0%} of the run "
                      f"is at min_lr {lo:g}")
            problems.append("long tail at min_lr")
            changes["lr_decay_iters"] = int(mx)
    if lr and lo is not None and lo >= SCHED_MIN_LR_RATIO * lr and "constant" not in sched:
        problems.append("shallow decay")
        ev.append(f"min_lr {lo:g} is {lo / lr:.0%} of learning_rate {lr:g}: the decay barely lowers the LR")
        changes["min_lr"] = round_lr(lr / 10)
    if not problems:
        return None
    serious = [p for p in problems if p not in minor]
    fix = {"constant": "Decay the LR: resume and cool down linearly to lr/10 over the next 20% of iterations "
                       "(lr_schedule='wsd'), or use cosine to min_lr = lr/10 at max_iters in the next run",
           "plateau at high LR": f"Do not wait for the distant decay: set max_iters = {changes.get('max_iters', 0):,} "
                                 "with lr_schedule='wsd' (cool down over the last 20%), resuming from the checkpoint",
           "decay past the end": f"Set lr_decay_iters = max_iters = {int(mx or 0):,}",
           "long tail at min_lr": f"Set lr_decay_iters = max_iters = {int(mx or 0):,}",
           "shallow decay": f"Set min_lr = {round_lr((lr or 0) / 10):g} (learning_rate / 10)"}
    expect = (f"a further drop of a few percent of the loss: ~{gain:.2f} nats at loss {L:.2f} (cooldowns remove "
              "~3% in Hagele et al. 2024 and Hu et al. 2024; an estimate)") if gain else ""
    return Finding("lr_schedule", "warning" if serious else "info", 0.6 if serious else 0.4,
                   "LR schedule: " + ", ".join(problems), ev, "; ".join(fix[p] for p in problems), changes, expect,
                   _late_region(f, s))


def detect_loss_spikes(f, s):
    spikes, sigma = _spikes(f, s)
    if not spikes:
        return None
    unrec = [x for x in spikes if not x[3]]
    ev = [f"iter {i:,}: +{j:.4f} (robust z {z:.1f}), " + ("recovered" if r else "not recovered")
          for i, j, z, r in spikes[:5]]
    ev.append(f"{len(spikes)} spikes; iter-loss jump noise {sigma:.3g} (1.4826 x MAD of differences)")
    if np.isfinite(s.gnorm).any():
        k = np.isin(s.it, [x[0] for x in spikes])
        if k.any():
            ev.append(f"gnorm at the spikes {', '.join(f'{x:.3g}' for x in s.gnorm[k][:5])} vs median "
                      f"{np.nanmedian(s.gnorm):.3g}")
    sev = "warning" if len(spikes) >= SPIKE_WARN or unrec else "info"
    lr, b2 = v(f, "learning_rate"), v(f, "beta2")
    changes = {}
    if lr:
        changes["learning_rate"] = round_lr(lr * 0.6)
    if b2 is not None and b2 > 0.95:
        changes["beta2"] = 0.95
    fix = ("Lower learning_rate" + (f" to {changes['learning_rate']:g}" if lr else " by ~40%")
           + ("; beta2 0.95 (0.99 adapts too slowly to gradient bursts)" if "beta2" in changes else "")
           + "; keep grad_clip=1.0; if the spikes follow the same batches, check the data there")
    return Finding("loss_spikes", sev, 0.5 + 0.1 * min(len(spikes), 4) + (0.1 if unrec else 0),
                   f"{len(spikes)} loss spike{'s' if len(spikes) > 1 else ''}" + (f", {len(unrec)} not recovered"
                                                                                 if unrec else ""), ev, fix, changes,
                   "no spikes; loss curve within its noise band", (spikes[0][0], spikes[-1][0]))


def detect_eval_variance(f, s):
    """Evals too noisy to act on.

    Random eval batches (stock nanoGPT): the standard error of a difference between two evals hides the
    change the trend makes over one interval (swamped).
    Fixed eval batches (train.py): successive evals are paired, free of batch-sampling noise, so the
    trend shows (what scatter remains is the model's own jitter, which more eval batches do not remove:
    lr_too_high and loss_spikes judge it). Yet each eval is still only +-se from the split's true loss:
    too coarse to compare runs by (level), or to see a val - train gap once data repeats (gap).
    """
    se, L = v(f, "eval_se"), v(f, "last_val_loss")
    m = np.isfinite(s.val)
    if not se or se <= 0 or not L or L < 1e-6 or m.sum() < 4:
        return None
    tr = f.get("val_trend") or {}
    interval = v(f, "eval_interval") or float(np.median(np.diff(s.step[m])))
    change = abs(tr["value"] / 1000 * interval) if tr.get("series") == "val" and tr.get("value") is not None else None
    paired = s.fmt == "plateau"
    gap = f.get("val_train_gap") or {}
    gap_z, epochs = gap.get("z"), v(f, "epochs")
    if paired:
        swamped = False
        k = np.flatnonzero(m & np.isfinite(s.val_se))
        if k.size:  # the level in question is the latest eval's; early ones, at a higher loss, had larger se
            se, L = float(s.val_se[k[-1]]), float(s.val[k[-1]])
            if se <= 0 or L < 1e-6:
                return None
        level = se >= EVAL_LEVEL_REL * L
        hidden_gap = (se >= EVAL_SE_REL * L and gap_z is not None and abs(gap_z) < 2 and epochs is not None
                      and epochs >= GAP_MATTERS_EPOCHS)
        if not (level or hidden_gap):
            return None
    else:
        if change is None:
            return None  # without a trend there is no change between evals to compare the noise with
        swamped = se >= EVAL_SE_REL * L and change / (math.sqrt(2) * se) < EVAL_SNR
        if not swamped:
            return None
    ci = tr.get("ci") or [0, 0]
    resolved = not paired and tr.get("p", 1) < TREND_P and (ci[0] > 0 or ci[1] < 0) and se < EVAL_LEVEL_REL * L
    src = (f"the last eval, step {int(s.step[k[-1]]):,}" if paired and k.size else
           f"{f['eval_se'].get('source')}; {f['eval_se'].get('note', '')}")
    ev = [f"val standard error {se:.3g} is {se / L:.1%} of the loss {L:.4f} ({src})"]
    if paired:
        ev.append("train.py's evals reuse fixed batches, so successive evals are paired: the trend"
                  + (f" ({change:.3g} per {int(interval)} iters)" if change is not None else "")
                  + f" shows, the level only to +-{se:.3g}; two runs' evals differ by noise up to "
                  f"{2 * math.sqrt(2) * se:.3g} (2 se of a difference)")
    else:
        ev.append(f"val changes by {change:.3g} per eval interval of {int(interval)} iters at the recent trend: "
                  f"{change / (math.sqrt(2) * se):.2f} standard errors of a difference, so one eval cannot tell "
                  "better from worse")
        d = np.diff(s.val[m])
        ev.append(f"eval-to-eval changes: median |diff| {np.median(np.abs(d)):.3g}, largest {np.max(np.abs(d)):.3g}")
        if resolved:
            ev.append(f"the trend over {tr.get('points')} evals is resolved all the same (Mann-Kendall p = "
                      f"{tr['p']:.2g}): the run's direction is known, single evals and small differences are not")
    if gap_z is not None:
        ev.append(f"val - train gap {gap['value']:+.4f} = {gap_z:+.1f} se" + (
            " (within noise: an overfitting gap this size would not show)" if abs(gap_z) < 2 else ""))
    ts_, vs_ = v(f, "eval_scatter_train"), v(f, "eval_scatter")
    if ts_ and vs_ and vs_ > 2 * ts_:
        ev.append(f"val scatters {vs_ / ts_:.1f}x more than train ({vs_:.3g} vs {ts_:.3g}) at the same eval_iters: "
                  "the val split is small or unlike train (check the split and shuffling)")
    target = max(EVAL_SE_REL * L / 2, change / (2 * math.sqrt(2)) if swamped else 0)
    n, iter_noise = v(f, "eval_iters"), v(f, "iter_loss_noise")
    changes = {}
    if n:
        changes["eval_iters"] = int(math.ceil(min(n * min(se / target, 1e6) ** 2, EVAL_ITERS_MAX_MULT * n)))
        fix = f"Raise eval_iters from {int(n)} to {changes['eval_iters']:,} (se {se:.3g} -> ~{target:.3g})"
    elif iter_noise:
        fix = (f"Raise eval_iters so that se ~ {target:.3g}: about {math.ceil(min(iter_noise / target, 1e3) ** 2):,} "
               "batches")
    else:
        fix = f"Raise eval_iters until the val standard error is ~{target:.3g}"
    if swamped and change and change < 2 * math.sqrt(2) * target:
        k = int(math.ceil(2 * math.sqrt(2) * se / max(change, 1e-12)))
        if k <= 20:
            fix += f"; or compare evals {k} intervals apart ({k * int(interval):,} iters)"
    if not paired:
        fix += "; use fixed eval batches so evals differ only by the model (train.py does)"
    if swamped:
        title = f"Eval noise: val se {se:.3g} ({se / L:.1%}) swamps the change between evals"
        expect = f"val se ~{target:.3g}: a change of {2 * math.sqrt(2) * target:.3g} between evals becomes visible"
    else:
        title = f"Eval noise: each eval is +-{se:.3g} ({se / L:.1%}) from the split's loss" + (
            "" if level else f"; the val - train gap ({gap_z:+.1f} se) is unresolved")
        expect = (f"val se ~{target:.3g}: runs and a val - train gap that differ by {2 * math.sqrt(2) * target:.3g} "
                  "become distinguishable")
    return Finding("eval_variance", "info" if resolved else "warning", min(0.85, 0.5 + 0.1 * (se / (EVAL_SE_REL * L))),
                   title, ev, fix, changes, expect, None)


def detect_throughput(f, s):
    mfu_real, logged = v(f, "mfu_real"), v(f, "mfu_logged")
    ach, gpu = v(f, "achieved_tflops"), sv(f, "gpu")
    ev, warn, changes, fixes = [], [], {}, []
    ref = (f.get("mfu_reference_tflops") or {}).get("value")
    if logged is not None:
        ev.append(f"logged mfu {logged:.3g}% of {ref or '?'} TFLOPS = {g(ach, 3)} TFLOPS achieved")
    if mfu_real is not None:
        ev.append(f"{mfu_real:.0f}% of {gpu}'s real peak {v(f, 'gpu_peak_tflops'):g} TFLOPS")
        if mfu_real < MFU_WARN:
            warn.append("low MFU")
            fixes.append("raise batch_size until memory is ~90% used (keep tokens/iter with "
                         "gradient_accumulation_steps), compile=True, bfloat16, check the data loader")
    elif logged is not None:
        ev.append(f"GPU unknown: the logged mfu is relative to {ref or '?'} TFLOPS (stock nanoGPT: an A100's bf16 "
                  "peak, whatever the GPU), so it says little about this GPU: pass --gpu for the real utilisation")
    frac, over = v(f, "eval_overhead_frac"), v(f, "eval_overhead_ms")
    t = v(f, "time_per_iter_ms")
    if frac is not None:
        ev.append(f"eval + checkpoint: {over:.0f} ms every {int(v(f, 'eval_interval') or 0):,} iters of {t:.0f} ms "
                  f"= {frac:.1%} of the time" + ("; the spike in `time` at eval iterations is this, not a slowdown"
                                                 if s.fmt not in ("plateau",) else ""))
        if frac > EVAL_OVERHEAD_WARN:
            warn.append("eval overhead")
            ei, n = v(f, "eval_interval"), v(f, "eval_iters")
            k = math.ceil(frac / EVAL_OVERHEAD_WARN * 2)  # cut the share to about half the threshold
            val_tok, bs, blk = v(f, "val_tokens"), v(f, "batch_size"), v(f, "block_size")
            cover = int(math.ceil(2 * val_tok / (bs * blk))) if val_tok and bs and blk else None
            if n and cover and cover < n:  # random crops of a small val split: twice its size is enough
                changes["eval_iters"] = max(cover, int(n // k))
                fixes.append(f"eval_iters {int(n)} -> {changes['eval_iters']}: each eval reads {n * bs * blk:,} "
                             f"tokens of a {val_tok:,}-token val split ({n * bs * blk / val_tok:.0f}x over)")
                k = n / changes["eval_iters"]
            elif ei:
                changes["eval_interval"] = int(ei * k)
                fixes.append(f"eval_interval {int(ei)} -> {int(ei * k)}" + (f" (or eval_iters {int(n)} -> "
                                                                            f"{max(1, int(n // k))})" if n else ""))
    stall = v(f, "stall_frac")
    if stall is not None and stall > STALL_WARN:
        warn.append("stalls")
        ev.append(f"stalls: {f['stall_frac'].get('stalls')} iterations over {F.STALL_FACTOR:g}x the median cost "
                  f"{stall:.1%} of training time")
        fixes.append("find the stalls (data loading from slow disk, swap, thermal throttling, other jobs)")
    if not ev:
        return None
    if not warn:
        if mfu_real is not None:
            title, fix = f"{mfu_real:.0f}% of {gpu}'s peak, not compute-starved", "Nothing to change"
        elif gpu in ("cpu", "mps"):  # train.py's header names the device; there is no GPU peak to compare with
            title, fix = f"trained on {gpu}: no GPU peak to measure MFU against", "Nothing to change"
        else:
            title, fix = "MFU against the real GPU unknown (pass --gpu)", "Pass --gpu to compare with the real peak"
        return Finding("throughput", "info", 0.6, "Throughput: " + title, ev, fix, {}, "", None)
    expect = "more tokens per second at the same loss per token"
    if "eval overhead" in warn and changes:
        expect = f"eval + checkpoint share {frac:.1%} -> ~{frac / k:.1%}: {frac - frac / k:.0%} more training time"
    return Finding("throughput", "warning", 0.65, "Throughput: " + ", ".join(warn), ev, "; ".join(fixes), changes,
                   expect, None)


def detect_config_mismatch(f, s):
    ev = []
    N, claim = v(f, "num_params"), v(f, "claimed_params")
    if N and claim and max(N / claim, claim / N) > CLAIM_TOL:
        ev.append(f"the config names {si(claim)} ({f['claimed_params'].get('note', '')}) but the model has {si(N)} "
                  f"parameters ({N / claim:.2f}x)" + (" (GPT-2 small, 124M, has n_embd 768)" if claim > 100e6 and
                                                      v(f, "n_embd") and v(f, "n_embd") < 768 else ""))
    printed, computed = f["num_params"], v(f, "num_params_config")
    if printed.get("source") in ("log", "header") and computed and N and abs(computed / N - 1) > PARAMS_TOL:
        ev.append(f"the log prints {si(N)} parameters, the config gives {si(computed)}: the config is not the one "
                  "that ran (or vocab_size differs)")
    tpi, tpi_cfg = f["tokens_per_iter"], v(f, "tokens_per_iter_config")
    if tpi.get("source") in ("log", "header") and tpi_cfg and tpi["value"] != tpi_cfg:
        ev.append(f"the log says {tpi['value']:,} tokens per iteration, the config gives {tpi_cfg:,} (world size or "
                  "gradient_accumulation_steps differ)")
    if v(f, "config_conflicts"):
        ev.append(f"--config differs from the log's config: {f['config_conflicts'].get('note')}")
    U, tpi_v = v(f, "dataset_tokens"), v(f, "tokens_per_iter")
    if U and tpi_v and tpi_v > U:
        ev.append(f"{tpi_v:,} tokens per iteration exceed the {U:,}-token dataset: every step sees it more than once")
    blk, val_tok = v(f, "block_size"), v(f, "val_tokens")
    for name, n in (("train", U), ("val", val_tok)):
        if blk and n and blk >= n:
            ev.append(f"block_size {int(blk):,} does not fit the {int(n):,}-token {name} split: no batch can be cut "
                      "from it")
    foreign = _foreign_val(f, s)
    if foreign:
        ev.append(foreign)
    if not ev:
        return None
    title = (f"The config names {si(claim)} but the model has {si(N)} parameters" if N and claim and
             max(N / claim, claim / N) > CLAIM_TOL else "The val data does not fit the model's vocabulary"
             if foreign and len(ev) == 1 else "The config and the log disagree")
    fixes = (["Check which config ran; size names follow nanoGPT's get_num_params (12 L d^2 + V d)"]
             if len(ev) > bool(foreign) else [])
    if foreign:
        fixes.append("Make val.bin with the same tokenizer as train.bin (meta.json's vocab_size) and check that "
                     "every id is below vocab_size")
    return Finding("config_mismatch", "warning", 0.65, title, ev, "; ".join(fixes), {}, "", None)


def _foreign_val(f, s):
    """An untrained model predicts about uniformly, so it scores ~ln(vocab) on any text in its vocabulary: val far
    above that at the start, while train is not, is val data from another tokenizer or with ids past the vocab."""
    lnv = v(f, "ln_vocab")
    vm = np.flatnonzero(np.isfinite(s.val) & (s.step <= F.INITIAL_MAX_ITER))
    if not lnv or not vm.size:
        return None
    val0, step0 = float(s.val[vm[0]]), int(s.step[vm[0]])
    it, loss = _finite_iters(s)
    tm = np.isfinite(s.train) & (s.step <= F.INITIAL_MAX_ITER)
    train0 = float(s.train[tm][0]) if tm.any() else float(loss[0]) if loss.size and it[0] <= F.INITIAL_MAX_ITER \
        else None
    if train0 is None or train0 > ABOVE_UNIFORM_MULT * lnv or val0 <= ABOVE_UNIFORM_MULT * lnv:
        return None
    return (f"at step {step0} val is {val0:.4f} = {val0 / lnv:.2f}x ln(vocab) {lnv:.4f} while train is "
            f"{train0:.4f}: an untrained model scores ~ln(vocab) on any text in its vocabulary, so the val data is "
            "not in it (a file from another tokenizer, or ids past vocab_size)")


def detect_still_improving(f, s):
    tr = f.get("val_trend") or {}
    last = v(f, "iters_done")
    if tr.get("value") is None or tr["value"] >= 0 or tr.get("p", 1) >= TREND_P or tr["ci"][1] >= 0 or not last:
        return None
    ev = [f"{tr.get('series')} falls {tr['value']:+.3g} nats/1k iters over steps {tr.get('first_step'):,}-{last:,} "
          f"(Theil-Sen, 95% CI {tr['ci'][0]:+.3g} to {tr['ci'][1]:+.3g}; Mann-Kendall p = {tr['p']:.2g})"]
    mx, E = v(f, "max_iters"), v(f, "loss_asymptote")
    fit = (f.get("loss_asymptote") or {}).get("fit")
    g2 = v(f, "gain_per_doubling")
    k = v(f, "tokens_per_iter") if fit and fit.get("x") == "tokens" else 1
    expect = ""
    if fit and mx and mx > last:
        now = fit["E"] + fit["A"] * (last * k) ** -fit["alpha"]
        end = fit["E"] + fit["A"] * (mx * k) ** -fit["alpha"]
        expect = (f"to max_iters {int(mx):,}: the fit gives {end:.3f} ({end - now:+.3f}), plus the LR decay's drop "
                  f"from lr {g(v(f, 'lr_last'), 3)}")
    elif g2 is not None:
        expect = f"a run twice as long: {-g2:+.3f} nats (fit, asymptote {E:.3f})"
    return Finding("still_improving", "info", 0.7, f"Still improving: {tr['value']:+.3g} nats per 1k iters", ev,
                   "Continue" + (f" to max_iters {int(mx):,}" if mx and mx > last else " if the gain is worth it"), {},
                   expect, _late_region(f, s))


def detect_healthy(f, s, findings):
    if any(x.severity != "info" and x.kind not in NOT_PATHOLOGY for x in findings):
        return None
    last = v(f, "iters_done")
    if last is None:
        return None
    ev = [f"{last:,} iters, no nan/inf, no spikes, no overfitting or rising loss"]
    vals = s.val[np.isfinite(s.val)]
    it, loss = _finite_iters(s)
    if vals.size >= 2:
        ev.append(f"val loss {vals[0]:.4f} -> {vals[-1]:.4f} over {vals.size} evals")
    elif loss.size >= 2:
        ev.append(f"iter loss {loss[0]:.4f} (iter {int(it[0])}) -> {loss[-1]:.4f} (iter {int(it[-1])})")
    w = v(f, "warmup_iters")
    if w and last < w:
        ev.append(f"still in warmup ({last:,} of {int(w):,} iters): a high loss is expected")
    return Finding("healthy", "info", 0.6, "No pathology found", ev, "Nothing to fix", {}, "", None)


DETECTORS = (detect_divergence, detect_no_learning, detect_overfitting, detect_data_repetition, detect_capacity,
             detect_lr_too_high, detect_lr_too_low, detect_lr_schedule, detect_loss_spikes, detect_eval_variance,
             detect_throughput, detect_config_mismatch, detect_still_improving)


def rank(findings):
    return sorted(findings, key=lambda x: (SEVERITIES.index(x.severity), -x.confidence, PRIORITY.index(x.kind)))


def diagnose(run, config=None, meta=None, gpu=None):
    """(facts, findings ranked most important first) for a logfmt.Run."""
    with np.errstate(all="ignore"):  # degenerate logs (constant, huge) must not print numpy warnings mid-training
        f, s = F.build(run, config, meta, gpu)
        findings = [x for d in DETECTORS if (x := d(f, s)) is not None]
        h = detect_healthy(f, s, findings)
    if h:
        findings.append(h)
    return f, rank(findings)
