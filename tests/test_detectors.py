"""plateau/detectors.py: the labelled real logs, one synthetic curve per kind, partial logs, JSON, fuzz."""

import json
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plateau import detectors, logfmt
from plateau.logfmt import Eval, Iter, Run

REAL = os.path.join(os.path.dirname(__file__), "fixtures", "real_logs")  # copied from shared/real_logs
LOGS = sorted(n[:-4] for n in os.listdir(REAL) if n.endswith(".log"))
SERIOUS = ("warning", "critical")


def label(name):
    with open(os.path.join(REAL, name + ".json")) as f:
        return json.load(f)


def real(name):
    return logfmt.parse_file(os.path.join(REAL, name + ".log")).runs[-1]


def kinds(findings, serious=True):
    return {f.kind for f in findings if f.severity in SERIOUS or not serious}


# ---------------------------------------------------------------- real logs against their labels


@pytest.mark.parametrize("with_config", [False, True], ids=["log-only", "labelled-config"])
@pytest.mark.parametrize("name", LOGS)
def test_real_log_matches_label(name, with_config):
    lab = label(name)
    facts, findings = detectors.diagnose(real(name), lab.get("config") if with_config else None)
    raised = kinds(findings)
    for kind in lab["ground_truth"]:
        kind = {"divergence_nan": "divergence"}.get(kind, kind)
        if kind == "healthy":
            assert not raised - set(detectors.NOT_PATHOLOGY), findings
        elif kind in detectors.KINDS:
            assert kind in raised, [(f.kind, f.severity, f.title) for f in findings]
    assert not raised & set(lab.get("not_expected", [])), [(f.kind, f.severity) for f in findings]
    json.dumps(facts, allow_nan=False)
    json.dumps([f.to_json() for f in findings], allow_nan=False)


# Logs found in public issues and READMEs (nanoGPT, llm.c, litgpt, forks), labelled by us: each JSON names its source.
PUBLIC = os.path.join(os.path.dirname(__file__), "fixtures", "public_logs")


@pytest.mark.parametrize("name", sorted(n[:-4] for n in os.listdir(PUBLIC) if n.endswith(".log")))
def test_public_log_matches_label(name):
    with open(os.path.join(PUBLIC, name + ".json")) as f:
        lab = json.load(f)
    facts, findings = detectors.diagnose(logfmt.parse_file(os.path.join(PUBLIC, name + ".log")).runs[-1])
    raised = kinds(findings)
    for kind in lab["ground_truth"]:
        if kind == "healthy":
            assert not raised - set(detectors.NOT_PATHOLOGY), [(f.kind, f.severity, f.title) for f in findings]
        else:
            assert kind in raised, [(f.kind, f.severity, f.title) for f in findings]
    assert not raised & set(lab.get("not_expected", [])), [(f.kind, f.severity) for f in findings]


USER = "user_run_40m_fineweb_4070"


def test_user_run_mission_facts():
    """MISSION.md's six facts, with the labelled config and --gpu 'RTX 4070'."""
    run = real(USER)
    facts, findings = detectors.diagnose(run, label(USER)["config"], gpu="RTX 4070")
    val = lambda k: facts[k]["value"]  # noqa: E731
    # 1. parameters: nanoGPT's count, 40.56M, not the config comment's ~125M
    assert round(val("num_params") / 1e6, 2) == 40.56
    # 2. val below train is the split and noise, not dropout
    assert val("val_train_gap") < 0 and "not dropout" in facts["val_train_gap"]["note"]
    # 3. train and val move together: no overfitting at all
    assert "overfitting" not in kinds(findings, serious=False)
    # 4. MFU: 12.9% of 312 = 40.2 TFLOPS = ~69% of an RTX 4070
    assert round(val("mfu_logged"), 1) == 12.9
    assert round(val("achieved_tflops"), 1) == 40.2
    assert 68 <= val("mfu_real") <= 70
    assert "throughput" not in kinds(findings)
    # 6. the time spike at eval steps is eval + checkpoint: ~15.3 s per eval, under 1% of the run
    assert 15000 < val("eval_overhead_ms") < 15500 and "not a slowdown" in facts["eval_overhead_ms"]["note"]
    assert val("eval_overhead_frac") < 0.01
    capacity = next(f for f in findings if f.kind == "capacity")
    assert capacity.severity == "warning" and capacity.confidence >= 0.6
    assert capacity.changes["n_embd"] > 384 and "val ~" in capacity.expect
    # 5. tokens seen by step 10k: 5.2B, about 130 tokens per parameter
    run.evals = [e for e in run.evals if e.step <= 10000]
    run.iters = [i for i in run.iters if i.iter <= 10000]
    facts, _ = detectors.diagnose(run, label(USER)["config"])
    assert round(val("tokens_seen") / 1e9, 1) == 5.2
    assert 125 <= val("tokens_per_param") <= 135


def test_user_run_without_config_says_what_is_unknown():
    facts, findings = detectors.diagnose(real(USER))
    for name, hint in (("num_params", "--config"), ("tokens_seen", "--config"), ("mfu_real", "--gpu"),
                       ("dataset_tokens", "--meta"), ("epochs", "--meta")):
        assert facts[name]["value"] is None and facts[name]["note"].startswith("unknown:") and hint in \
            facts[name]["note"], name
    capacity = next(f for f in findings if f.kind == "capacity")
    assert capacity.severity == "warning" and capacity.confidence < 0.6
    throughput = next(f for f in findings if f.kind == "throughput")
    assert throughput.severity == "info"  # never warn from A100-relative MFU with the GPU unknown


def test_user_run_with_meta_adds_data_repetition():
    meta = {"splits": {"train": {"tokens": 1_000_000_000, "documents": 1}, "val": {"tokens": 10_000_000,
                                                                                    "documents": 1}}}
    facts, findings = detectors.diagnose(real(USER), label(USER)["config"], meta)
    assert 10 < facts["epochs"]["value"] < 11
    assert {"capacity", "data_repetition"} <= kinds(findings)
    assert (facts["val_tokens"]["value"], facts["val_tokens"]["source"]) == (10_000_000, "meta")


def test_dataloader_lines_give_epochs():
    lines = ["loaded 338025 tokens", "1 epoch = 20 batches"] + [f"step {i:04d}, loss: {6 - i / 100:.6f}, norm: 0.5, "
                                                                 f"lr: 6e-04, time: 110.0ms" for i in range(200)]
    facts, _ = detectors.diagnose(logfmt.parse(lines).runs[-1])
    assert facts["tokens_per_iter"]["value"] == 338025 // 20 and facts["dataset_tokens"]["value"] == 338025
    assert 9.9 < facts["epochs"]["value"] < 10  # 199 iters of 20 per epoch


def test_val_tokens_name_their_source():
    run = real(USER)
    run.info["val_tokens"] = 5_000_000
    meta = {"splits": {"train": {"tokens": 1_000_000_000, "documents": 1}}}  # no val split
    facts, _ = detectors.diagnose(run, label(USER)["config"], meta)
    assert (facts["val_tokens"]["value"], facts["val_tokens"]["source"]) == (5_000_000, "log")


# ---------------------------------------------------------------- synthetic curves


def power(E=3.0, L0=10.83, tau=50.0, alpha=0.6):
    return lambda t: E + (L0 - E) * (1 + t / tau) ** -alpha


def synth(curve, iters, eval_interval=250, log_interval=10, iter_noise=0.05, eval_noise=0.003, val=None, seed=0,
          config=None, time_ms=500.0, mfu=None, lr=None, fmt="nanogpt"):
    """A nanoGPT-style run: evals every eval_interval, iter lines every log_interval (train mode, +0.05)."""
    rng = np.random.default_rng(seed)
    run = Run()
    run.format = fmt
    run.config = dict(config or {})
    val = val or curve
    for t in range(0, iters + 1, eval_interval):
        run.evals.append(Eval(t, float(curve(t) + rng.normal(0, eval_noise)),
                              float(val(t) + rng.normal(0, eval_noise))))
    for t in range(0, iters + 1, log_interval):
        run.iters.append(Iter(t, float(curve(t) + 0.05 + rng.normal(0, iter_noise)), time_ms=time_ms, mfu=mfu,
                              lr=None if lr is None else float(lr(t))))
    return run


SMALL = {"n_layer": 6, "n_head": 6, "n_embd": 384, "batch_size": 12, "block_size": 1024,
         "gradient_accumulation_steps": 4, "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100,
         "lr_decay_iters": 2000, "max_iters": 2000, "eval_iters": 200, "eval_interval": 250, "vocab_size": 50304}


def run_kinds(run, config=None, **kw):
    facts, findings = detectors.diagnose(run, config, **kw)
    json.dumps(facts, allow_nan=False)
    for f in findings:
        assert f.kind in detectors.KINDS and f.severity in detectors.SEVERITIES and 0 <= f.confidence <= 1
        assert f.evidence and all(any(c.isdigit() for c in e) for e in f.evidence), (f.kind, f.evidence)
        json.dumps(f.to_json(), allow_nan=False)
    return facts, findings


def test_power_law_still_improving_is_healthy():
    facts, findings = run_kinds(synth(power(), 2000), SMALL)
    assert not kinds(findings) - set(detectors.NOT_PATHOLOGY), [(f.kind, f.title) for f in findings]
    assert {"healthy", "still_improving"} <= kinds(findings, serious=False)
    fit = facts["loss_asymptote"]["fit"]
    assert fit is not None and fit["x"] == "tokens"


def test_plateau_far_past_compute_optimal_is_capacity():
    cfg = dict(SMALL, gradient_accumulation_steps=40, max_iters=40000, lr_decay_iters=40000, eval_interval=1000)
    facts, findings = run_kinds(synth(power(), 40000, eval_interval=1000, log_interval=100), cfg, gpu="RTX 4090")
    assert facts["tokens_per_param"]["value"] > 100
    cap = next(f for f in findings if f.kind == "capacity")
    assert cap.severity == "warning" and cap.changes["n_embd"] > 384 and cap.changes["max_iters"] < 40000
    assert abs(facts["loss_asymptote"]["value"] - 3.0) < 0.15


def test_val_u_shape_with_train_falling_is_overfitting():
    curve = power(E=1.0, L0=4.2, tau=30, alpha=0.7)
    val = lambda t: curve(t) + 0.3 + 0.15 * max(0.0, t - 1500) / 1000  # noqa: E731
    facts, findings = run_kinds(synth(curve, 5000, val=val, log_interval=50), dict(SMALL, max_iters=5000,
                                                                                   lr_decay_iters=5000))
    of = next(f for f in findings if f.kind == "overfitting")
    assert of.severity in SERIOUS and of.changes["max_iters"] < 5000
    assert "1,500" in of.title or "1,500" in of.fix or "1,750" in of.fix


def test_train_and_val_falling_together_is_not_overfitting():
    curve = power()
    val = lambda t: curve(t) - 0.07  # noqa: E731  val below train by a split difference
    facts, findings = run_kinds(synth(curve, 2000, val=val), SMALL)
    assert "overfitting" not in kinds(findings, serious=False)
    assert "not dropout" in facts["val_train_gap"]["note"]


def test_nan_tail_is_divergence():
    run = synth(power(), 2000)
    for it in run.iters:
        if it.iter > 1500:
            it.loss = math.nan
    facts, findings = run_kinds(run, dict(SMALL, dtype="float16"), gpu="RTX 3090")
    d = findings[0]
    assert d.kind == "divergence" and d.severity == "critical" and "1,510" in d.title or "1510" in d.title
    assert d.changes["learning_rate"] == 5e-4 and d.changes["dtype"] == "bfloat16"


def test_loss_back_above_ln_vocab_is_divergence():
    curve = lambda t: power()(t) if t < 1200 else 3.5 + (t - 1200) * 0.02  # noqa: E731
    _, findings = run_kinds(synth(curve, 2000), SMALL)
    assert "divergence" in kinds(findings)


def test_spikes_are_found_with_recovery():
    run = synth(power(), 2000)
    for k in (80, 150):
        run.iters[k].loss += 2.0
    _, findings = run_kinds(run, SMALL)
    sp = next(f for f in findings if f.kind == "loss_spikes")
    assert sp.severity == "warning" and "800" in " ".join(sp.evidence) and "recovered" in sp.evidence[0]


def test_one_recovered_spike_is_info():
    run = synth(power(), 2000)
    run.iters[120].loss += 1.5
    _, findings = run_kinds(run, SMALL)
    assert "loss_spikes" in kinds(findings, serious=False) and "loss_spikes" not in kinds(findings)


def test_flat_at_ln_vocab_is_no_learning():
    flat = lambda t: math.log(50304)  # noqa: E731
    _, findings = run_kinds(synth(flat, 1000), dict(SMALL, learning_rate=1e-7, min_lr=1e-8))
    nl = next(f for f in findings if f.kind == "no_learning")
    assert nl.severity == "critical"
    assert "lr_too_low" in kinds(findings)


def test_a_loss_frozen_to_the_digit_is_no_learning_however_short():
    run = synth(power(), 60, log_interval=1)
    for i in run.iters[-12:]:
        i.loss = 10.8259  # litgpt #689: uniform logits over 50,304 tokens
    nl = next(f for f in detectors.diagnose(run)[1] if f.kind == "no_learning")
    assert nl.severity == "critical" and "12 iterations" in nl.title and "50,30" in nl.evidence[1]


def test_bf16_rounded_losses_are_not_frozen():
    run = synth(power(), 2000, log_interval=1, iter_noise=0.05)
    for i in run.iters:
        i.loss = round(i.loss * 64) / 64  # bf16's step between 2 and 4
    assert "no_learning" not in kinds(detectors.diagnose(run)[1], serious=False)


def test_noisy_evals_with_one_eval_iter_is_eval_variance():
    curve = power(E=3.0, tau=50)
    cfg = dict(SMALL, eval_iters=1, max_iters=6000, lr_decay_iters=6000)
    run = synth(curve, 6000, eval_noise=0.15, iter_noise=0.15, log_interval=50)
    _, findings = run_kinds(run, cfg)
    ev = next(f for f in findings if f.kind == "eval_variance")
    assert ev.severity == "warning" and ev.changes["eval_iters"] > 10


def paired(run, se):
    """train.py's log of `run`: fixed eval batches (smooth evals) that each sit +-se from the split's loss."""
    run.format = "plateau"
    for e in run.evals:
        e.train_se = e.val_se = se
    return run


def test_paired_evals_with_a_large_se_are_eval_variance():
    """Smooth fixed-batch evals are not 'noise swamping the change', but a 7% se still makes the level too
    coarse to compare runs by."""
    run = paired(synth(power(E=3.0, tau=50), 4000, eval_noise=0.001, log_interval=50), se=0.2)
    _, findings = run_kinds(run, dict(SMALL, eval_iters=2, max_iters=4000, lr_decay_iters=4000))
    ev = next(f for f in findings if f.kind == "eval_variance")
    assert ev.severity == "warning" and "swamps" not in ev.title and ev.changes["eval_iters"] > 2
    assert any("fixed batches" in e for e in ev.evidence)


@pytest.mark.parametrize("data_tokens, raised", [(20_000_000, True), (2_000_000_000, False)])
def test_paired_evals_hide_the_gap_only_once_data_repeats(data_tokens, raised):
    """se 1% of the loss: the val - train gap (0) is unresolved; that matters at ~10 epochs, not at 0.1."""
    meta = {"splits": {"train": {"tokens": data_tokens, "documents": 1}, "val": {"tokens": 10**6, "documents": 1}}}
    run = paired(synth(power(E=3.0, tau=50), 4000, eval_noise=0.001, log_interval=50), se=0.03)
    _, findings = run_kinds(run, dict(SMALL, eval_iters=2, max_iters=4000, lr_decay_iters=4000), meta=meta)
    ev = [f for f in findings if f.kind == "eval_variance"]
    assert bool(ev) == raised and (not ev or "unresolved" in ev[0].title)


def test_paired_evals_with_a_small_se_are_not_eval_variance():
    run = paired(synth(power(E=3.0, tau=50), 4000, eval_noise=0.001, log_interval=50), se=0.005)
    _, findings = run_kinds(run, dict(SMALL, max_iters=4000, lr_decay_iters=4000))
    assert "eval_variance" not in kinds(findings, serious=False)


def test_constant_lr_plateau_is_lr_schedule():
    curve = power(E=3.2, tau=20, alpha=0.9)
    cfg = dict(SMALL, decay_lr=False, max_iters=8000, lr_decay_iters=8000)
    run = synth(curve, 8000, eval_interval=500, log_interval=50, lr=lambda t: 1e-3)
    _, findings = run_kinds(run, cfg)
    ls = next(f for f in findings if f.kind == "lr_schedule")
    assert ls.severity == "warning" and ls.changes["lr_schedule"] == "wsd" and "nats" in ls.expect


def test_stopped_long_before_the_decay_is_lr_schedule():
    curve = lambda t: 3.2 + 7.6 * math.exp(-t / 1000)  # noqa: E731  flat within noise at peak LR
    cfg = dict(SMALL, max_iters=600000, lr_decay_iters=600000, warmup_iters=2000)
    _, findings = run_kinds(synth(curve, 20000, eval_interval=1000, log_interval=100), cfg)
    ls = next(f for f in findings if f.kind == "lr_schedule")
    assert ls.severity == "warning" and ls.changes["max_iters"] == 25000


@pytest.mark.parametrize("change, key, want", [({"lr_decay_iters": 4000}, "lr_decay_iters", 2000),
                                               ({"min_lr": 8e-4}, "min_lr", 1e-4)])
def test_decay_past_the_end_or_shallow_min_lr(change, key, want):
    _, findings = run_kinds(synth(power(), 2000), dict(SMALL, **change))
    ls = next(f for f in findings if f.kind == "lr_schedule")
    assert ls.severity == "warning" and ls.changes[key] == want


def test_lr_far_above_the_gpt3_table_is_lr_too_high():
    cfg = dict(SMALL, n_layer=12, n_head=12, n_embd=768, gradient_accumulation_steps=40, learning_rate=6e-3)
    _, findings = run_kinds(synth(power(), 2000), cfg)
    hi = next(f for f in findings if f.kind == "lr_too_high")
    assert hi.severity == "warning" and hi.changes["learning_rate"] <= 6e-4


def test_tiny_model_far_above_the_extrapolated_table_with_a_clean_curve_is_only_a_hint():
    cfg = dict(SMALL, n_layer=1, n_head=1, n_embd=64, learning_rate=1e-2, min_lr=1e-3)
    _, findings = run_kinds(synth(power(), 2000), cfg)
    hi = next(f for f in findings if f.kind == "lr_too_high")
    assert hi.severity == "info" and any("sweep" in e for e in hi.evidence)


def test_loss_far_above_a_uniform_guess_is_lr_too_high_for_any_size():
    """A tiny model whose loss climbs from ln(vocab) to 10x it and comes back: the steps overshoot."""
    blowup = lambda t: 6.2 + (50.0 if 20 <= t <= 100 else 0.0) + 3.0 * (1 - math.exp(-t / 400)) * -1  # noqa: E731
    cfg = dict(SMALL, n_layer=2, n_head=2, n_embd=64, vocab_size=512, learning_rate=3.0, min_lr=0.3, warmup_iters=30)
    _, findings = run_kinds(synth(blowup, 1000, eval_interval=100, log_interval=5), cfg)
    hi = next(f for f in findings if f.kind == "lr_too_high")
    assert hi.severity == "warning" and any("uniform guess" in e for e in hi.evidence)
    assert 1e-4 < hi.changes["learning_rate"] <= 2e-3  # the table's LR for the size, not 30x below it


def test_oscillating_loss_is_lr_too_high():
    curve = power()
    wobble = lambda t: curve(t) + 0.1 * math.sin(t / 500 * math.pi)  # noqa: E731  the model's loss moves
    _, findings = run_kinds(synth(wobble, 4000), dict(SMALL, max_iters=4000, lr_decay_iters=4000))
    assert "lr_too_high" in kinds(findings)


def test_low_lr_with_linear_curve_is_lr_too_low():
    slow = lambda t: 10.0 - 0.0005 * t  # noqa: E731
    cfg = dict(SMALL, learning_rate=2e-5, min_lr=2e-6)
    _, findings = run_kinds(synth(slow, 2000), cfg)
    lo = next(f for f in findings if f.kind == "lr_too_low")
    assert lo.changes["learning_rate"] > 2e-5


def test_low_mfu_on_a_known_gpu_is_throughput():
    run = synth(power(), 2000, mfu=2.0)
    for it in run.iters:
        if it.iter % 250 == 0 and it.iter:
            it.time_ms = 20000.0
    _, findings = run_kinds(run, SMALL, gpu="RTX 4090")
    tp = next(f for f in findings if f.kind == "throughput")
    assert tp.severity == "warning" and "low MFU" in tp.title and "eval overhead" in tp.title


def test_a100_relative_mfu_never_warns_without_gpu():
    _, findings = run_kinds(synth(power(), 2000, mfu=2.0), SMALL)
    assert "throughput" not in kinds(findings)


def test_claimed_size_mismatch_is_config_mismatch():
    _, findings = run_kinds(synth(power(), 2000), dict(SMALL, wandb_run_name="gpt2-125M"))
    cm = next(f for f in findings if f.kind == "config_mismatch")
    assert "125M" in cm.evidence[0] and "29.94M" in cm.evidence[0]


def test_printed_params_differ_from_config():
    run = synth(power(), 2000)
    run.info["num_params"] = 123_650_000
    _, findings = run_kinds(run, SMALL)
    assert "config_mismatch" in kinds(findings)


def test_many_epochs_is_data_repetition():
    meta = {"splits": {"train": {"tokens": 2_000_000, "documents": 10}, "val": {"tokens": 200_000, "documents": 1}}}
    facts, findings = run_kinds(synth(power(), 2000), SMALL, meta=meta)
    assert facts["epochs"]["value"] > 40
    dr = next(f for f in findings if f.kind == "data_repetition")
    assert dr.severity == "critical"


def test_our_format_uses_logged_standard_errors():
    run = synth(power(), 2000, fmt="plateau")
    for e in run.evals:
        e.train_se, e.val_se = 0.002, 0.0021
    facts, _ = run_kinds(run, SMALL)
    assert facts["eval_se"]["value"] == 0.0021 and facts["eval_se"]["source"] == "header"


# ---------------------------------------------------------------- partial logs never raise


def partial_runs():
    nan = math.nan
    yield Run()
    yield Run(evals=[Eval(0, 10.9, 10.9)])
    yield Run(evals=[Eval(0, nan, nan)])
    yield Run(evals=[Eval(0, 10.9, None), Eval(100, None, 5.0)])
    yield Run(iters=[Iter(0, 10.9)])
    yield Run(iters=[Iter(i, nan) for i in range(20)])
    yield Run(iters=[Iter(i, math.inf, time_ms=0.0, mfu=-5.0) for i in range(20)])
    yield Run(evals=[Eval(i * 10, 5.0, 5.0) for i in range(30)])
    yield Run(iters=[Iter(i, 3.0, time_ms=100.0, mfu=10.0, lr=1e-3) for i in range(30)])
    yield Run(evals=[Eval(5, 3.0, 3.1), Eval(5, 3.0, 3.2), Eval(3, 2.0, 2.0)], iters=[Iter(7, 1e300), Iter(7, -1.0)])
    yield Run(evals=[Eval(i, 3.0 - i * 1e-9, 3.0) for i in range(10)], iters=[Iter(i, 0.0) for i in range(50)])


@pytest.mark.parametrize("run", list(partial_runs()))
@pytest.mark.parametrize("config", [None, SMALL, {"n_layer": "twelve", "learning_rate": "high", "dtype": 3}])
def test_partial_logs_never_raise(run, config):
    facts, findings = detectors.diagnose(run, config, {"splits": {}}, "RTX 4070")
    json.dumps(facts, allow_nan=False)
    json.dumps([f.to_json() for f in findings], allow_nan=False)
    assert all(f.kind in detectors.KINDS for f in findings)


finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(),
                          st.floats(min_value=0, max_value=12))
evals = st.builds(Eval, st.integers(0, 5000), finite_or_not, finite_or_not, finite_or_not, finite_or_not,
                  finite_or_not)
iters = st.builds(Iter, st.integers(0, 5000), st.floats(allow_nan=True, allow_infinity=True), finite_or_not,
                  finite_or_not, finite_or_not, finite_or_not)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(evals, max_size=30), st.lists(iters, max_size=80), st.sampled_from([None, SMALL]),
       st.sampled_from([None, "RTX 4070", "unknown gpu"]))
def test_fuzzed_runs_never_raise(ev, it, config, gpu):
    ev.sort(key=lambda e: e.step)
    it.sort(key=lambda i: i.iter)
    facts, findings = detectors.diagnose(Run(evals=ev, iters=it), config, None, gpu)
    json.dumps(facts, allow_nan=False)
    json.dumps([f.to_json() for f in findings], allow_nan=False)


# ---------------------------------------------------------------- statistics


def test_theil_sen_and_kendall_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    from plateau import facts

    rng = np.random.default_rng(1)
    x = np.arange(40, dtype=float)
    y = 0.3 * x + rng.standard_t(3, 40)
    ours = facts.theil_sen(x, y)
    ref = stats.theilslopes(y, x)
    assert np.allclose(ours, (ref.slope, ref.intercept, ref.low_slope, ref.high_slope))
    tau, p = facts.mann_kendall(x, y)
    ref_tau = stats.kendalltau(x, y)
    assert abs(tau - ref_tau.statistic) < 1e-9 and abs(p - ref_tau.pvalue) < 0.01


def test_power_fit_recovers_its_parameters():
    from plateau import facts

    x = np.linspace(1000, 20000, 39)
    y = 3.2 + 40.0 * x**-0.45 + np.random.default_rng(0).normal(0, 0.003, x.size)
    fit = facts.fit_power(x, y)
    assert abs(fit["E"] - 3.2) < 0.05 and abs(fit["alpha"] - 0.45) < 0.05 and fit["E_lo"] <= 3.2 <= fit["E_hi"]


def test_param_count_is_nanogpts():
    from plateau import facts

    assert facts.count_params(12, 384, 50304) == 40_560_000
    assert facts.count_params(6, 384, 65) == 10_646_784  # nanoGPT prints 10.65M for shakespeare-char
    assert round(facts.count_params(12, 768, 50257, bias=True) / 1e6, 2) == 123.65  # GPT-2 small from OpenAI
