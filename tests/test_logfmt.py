"""plateau/logfmt.py: writer lines parse back to the same numbers, the labelled real logs and one fixture per
foreign format parse with the right counts, pasting mess is cleaned, runs split and resume, and the parser
never raises on mangled input (hypothesis)."""

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plateau import logfmt
from plateau.logfmt import (
    format_checkpoint,
    format_config,
    format_eval,
    format_info,
    format_iter,
    format_num_params,
    format_resume,
    format_tokens_per_iter,
    parse,
    parse_file,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "logs"
# Real logs posted by other people, with labels (copied from shared/real_logs).
REAL = Path(__file__).parent / "fixtures" / "real_logs"
REAL_LOGS = sorted(p.stem for p in REAL.glob("*.log"))
NAN, INF = float("nan"), float("inf")


def same(a, b):
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def printed(value, spec):
    """The number a reader gets back from `value` printed with `spec`."""
    return None if value is None else float(format(value, spec))


def one_run(lines):
    p = parse(lines)
    assert len(p.runs) == 1
    return p.runs[0]


# ---------------------------------------------------------------- the writer's lines round-trip

ITER_GRID = {  # every combination: 12,960 lines
    "it": [0, 123456789],
    "loss": [0.0, 2.34567, NAN, INF, -INF],
    "time_ms": [0.004, 1.5e7, NAN],
    "mfu": [None, 12.87, 150.0, NAN],
    "lr": [None, 6e-4, 1.23456e-10],
    "gnorm": [None, 0.42101, INF],
    "tok_s": [None, 134330.4, NAN],
    "scale_skipped": [(None, None), (65536.0, 0), (1048576.0, 3), (2.0**-14, 1)],
}


def test_every_iter_line_round_trips():
    for it, loss, time_ms, mfu, lr, gnorm, tok_s, (scale, skipped) in itertools.product(*ITER_GRID.values()):
        line = format_iter(it, loss, time_ms, mfu, lr, gnorm, tok_s, scale, skipped)
        p = parse([line])
        assert (p.used, p.skipped) == (1, 0), line
        (x,) = p.runs[0].iters
        want = (it, printed(loss, ".4f"), printed(time_ms, ".2f"), printed(mfu, ".2f"), printed(lr, ".4e"),
                printed(gnorm, ".4f"), printed(tok_s, ".0f"), printed(scale, "g"), skipped)
        got = (x.iter, x.loss, x.time_ms, x.mfu, x.lr, x.gnorm, x.tok_s, x.scale, x.skipped)
        assert all(map(same, got, want)), (line, got, want)


@pytest.mark.parametrize("step", [0, 500, 20000])
@pytest.mark.parametrize("train_loss, val_loss", [(5.4354, 5.5328), (3.64, 3.57), (NAN, INF), (0.0, -INF)])
@pytest.mark.parametrize("train_se, val_se", [(None, None), (0.0021, 0.0023), (1.23456e-5, NAN), (0.0, 12.5)])
@pytest.mark.parametrize("time_ms", [None, 15250.12, 0.001])
def test_every_eval_line_round_trips(step, train_loss, val_loss, train_se, val_se, time_ms):
    line = format_eval(step, train_loss, val_loss, train_se, val_se, time_ms)
    (e,) = one_run([line]).evals
    want = (step, printed(train_loss, ".4f"), printed(val_loss, ".4f"), printed(train_se, ".4g"),
            printed(val_se, ".4g"), printed(time_ms, ".2f"))
    assert all(map(same, (e.step, e.train_loss, e.val_loss, e.train_se, e.val_se, e.time_ms), want)), line


def test_header_and_bookkeeping_lines_round_trip():
    cfg = {"n_layer": 12, "dropout": 0.1, "learning_rate": 1e-3, "bias": False, "dtype": "bfloat16", "out_dir": "o"}
    info = {"num_params": 40562688, "tokens_per_iter": 524288, "device_name": "NVIDIA GeForce RTX 4070",
            "peak_tflops": 58.3}
    lines = [format_config(cfg), format_info(info), format_num_params(40562688),
             format_tokens_per_iter(524288), format_eval(0, 10.8684, 10.8727, 0.002, 0.002, 15250.12),
             format_iter(0, 10.87, 19164.3, None, 0.0, 1.2, 27357, 65536.0, 0),
             format_checkpoint("out-fineweb", 812.4), format_iter(1, 9.87, 3917.8, 69.1, 2e-6, 1.1, 133820)]
    p = parse(lines)
    assert (p.used, p.skipped, p.formats) == (len(lines), 0, ["plateau"])
    r = p.runs[0]
    assert r.config == cfg and r.info == info  # the exact JSON count wins over the rounded '40.56M'
    assert r.checkpoints == [(7, 812.4)]
    assert (r.format, r.mfu_ref, r.iter_loss_scope) == ("plateau", "device", "batch")
    assert one_run([format_num_params(40562688)]).info == {"num_params": 40560000}
    assert one_run([format_tokens_per_iter(16384)]).info == {"tokens_per_iter": 16384}


# ---------------------------------------------------------------- the labelled real logs


@pytest.mark.parametrize("name", REAL_LOGS)
def test_real_log_counts_match_its_label(name):
    counts = json.loads((REAL / f"{name}.json").read_text())["line_counts"]
    p = parse_file(REAL / f"{name}.log")
    r = p.runs[-1]
    assert len(p.runs) == 1
    assert (len(r.evals), len(r.iters), p.lines) == (counts["nanogpt_step_lines"], counts["nanogpt_iter_lines"],
                                                     counts["total_lines"])
    assert p.formats == ["nanogpt"] and (r.mfu_ref, r.iter_loss_scope) == ("a100", "micro_batch")
    assert [e.step for e in r.evals] == sorted(e.step for e in r.evals)


def test_real_nan_log_keeps_the_truncated_last_iter():
    """Issue #215's paste: '> ' quotes, timestamps, blank quote lines, and a last line cut after the loss."""
    p = parse_file(REAL / "nanogpt215_v100_fp16_nan.log")
    r = p.runs[0]
    assert (p.lines, p.used, p.skipped) == (35, 18, 0)  # 17 records and a checkpoint; 17 blank '> ' lines
    assert (r.iters[0].iter, r.iters[0].loss, r.iters[0].time_ms, r.iters[0].mfu) == (2920, 3.9883, 1099.34, 15.34)
    last = r.iters[-1]
    assert (last.iter, math.isnan(last.loss), last.time_ms, last.mfu) == (3070, True, None, None)
    assert sum(math.isnan(x.loss) for x in r.iters) == 7
    assert (r.evals[0].step, r.evals[0].train_loss, r.evals[0].val_loss) == (3000, 4.039, 4.0427)


def test_real_macmini_config_echo_is_config_and_warning_source_lines_are_not():
    r = parse_file(REAL / "macmini_m4_shakespeare_char_overfit.log").runs[0]
    assert (r.config["n_layer"], r.config["dropout"], r.config["learning_rate"]) == (6, 0.2, 1e-3)
    assert r.config["always_save_checkpoint"] is False and r.config["device"] == "mps"
    assert "scaler" not in r.config and "self" not in r.config
    assert r.info == {"tokens_per_iter": 16384, "vocab_size": 65, "num_params": 10650000}
    assert [n.kind for n in r.notes] == ["warning"] * 3
    assert len(r.checkpoints) == 7 and r.iters[0].mfu is None  # 'mfu -100.00%' is nanoGPT's warm-up


def test_real_user_log_whitespace_lines_are_neither_used_nor_skipped():
    p = parse_file(REAL / "user_run_40m_fineweb_4070.log")
    assert (p.used, p.skipped, p.lines) == (182, 0, 184)
    assert len(p.runs[0].checkpoints) == 40


# ---------------------------------------------------------------- one fixture per foreign format

FIXTURE_TABLE = [
    # file, format, evals as (step, train, val), iter count, (first iter fields), run fields
    ("build_nanogpt_console.log", "build-nanogpt", [(0, None, 10.9505), (5, None, 9.8123)], 6,
     dict(iter=0, loss=10.955029, lr=8.3916e-07, gnorm=15.4284, time_ms=34553.21, tok_s=15173.35, mfu=None),
     dict(hellaswag=[(0, 0.2463), (5, 0.2451)], info={"tokens_per_iter": 524288},
          config={"gradient_accumulation_steps": 32}, iter_loss_scope="batch", mfu_ref=None)),
    ("build_nanogpt_log.txt", "build-nanogpt", [(0, None, 10.9505), (5, None, 9.8123)], 6,
     dict(iter=0, loss=10.955029, time_ms=None), dict(hellaswag=[(0, 0.2463), (5, 0.2451)])),
    ("llmc_train_gpt2cu.log", "llmc", [(0, None, 11.00907), (5, None, 9.402211)], 5,
     dict(iter=1, loss=11.010421, gnorm=15.0478, lr=8.57e-07, time_ms=2468.23, mfu=None, tok_s=212415.0),
     dict(hellaswag=[(5, 0.245967)], mfu_ref="device", iter_loss_scope="batch",
          info={"tokens_per_iter": 524288, "device_name": "NVIDIA A100-SXM4-80GB", "peak_tflops": 312.0,
                "num_params": 124475904, "vocab_size": 50257},
          config={"batch_size": 64, "block_size": 1024, "learning_rate": 6e-4, "warmup_iters": 700,
                  "weight_decay": 0.1, "max_iters": 5, "eval_interval": 250, "n_layer": 12, "n_head": 12,
                  "n_embd": 768, "gradient_accumulation_steps": 8})),
    ("llmc_main.log", "llmc", [(0, None, 11.0091), (5, None, 9.4022)], 5,
     dict(iter=0, loss=11.0104, lr=1e-06, gnorm=15.05), dict(hellaswag=[(5, 0.246)])),
    ("llmc_train_gpt2c.log", "llmc", [(0, None, 5.325522), (10, None, 4.276831)], 10,
     dict(iter=0, loss=4.677773, time_ms=1987.546),
     dict(info={"num_params": 124475904, "vocab_size": 50257}, config={"n_layer": 12, "n_head": 12, "n_embd": 768})),
    ("llmc_train_gpt2cu_2024-04.log", "llmc", [(0, None, 4.51392)], 5,
     dict(iter=1, loss=4.367631, time_ms=80.639749, tok_s=50793.0), dict(info={"num_params": 124439808})),
    ("llama2c.log", "llama2c", [(0, 10.3741, 10.3737), (20, 8.9126, 8.9211), (40, 7.0054, 7.0113)], 5,
     dict(iter=0, loss=10.3708, lr=0.0, time_ms=2834.09, mfu=None),
     dict(info={"tokens_per_iter": 131072}, mfu_ref="a100", iter_loss_scope="micro_batch",
          config={"compile": False, "eval_interval": 20, "eval_iters": 10, "log_interval": 10})),
    ("litgpt_pretrain.log", "litgpt", [(8, None, 10.1), (16, None, 9.7), (24, None, 9.3)], 6,
     dict(iter=4, loss=10.871, time_ms=35.53), dict(info={"num_params": 14067712}, iter_loss_scope="batch")),
    ("litgpt_2023.log", "litgpt", [(7, None, 10.3)], 12,
     dict(iter=0, loss=10.98, time_ms=310.25), dict(iter_loss_scope="micro_batch")),
]


@pytest.mark.parametrize("name, fmt, evals, n_iters, first, run_fields", FIXTURE_TABLE,
                         ids=[row[0] for row in FIXTURE_TABLE])
def test_foreign_format_fixture(name, fmt, evals, n_iters, first, run_fields):
    p = parse_file(FIXTURES / name)
    assert len(p.runs) == 1 and p.formats == [fmt]
    r = p.runs[0]
    assert r.format == fmt
    assert [(e.step, e.train_loss, e.val_loss) for e in r.evals] == evals
    assert len(r.iters) == n_iters
    assert [r.iters[i].iter for i in range(n_iters)] == sorted(x.iter for x in r.iters)
    assert {k: getattr(r.iters[0], k) for k in first} == first
    assert {k: getattr(r, k) for k in run_fields} == run_fields


@pytest.mark.parametrize("lines, formats", [
    (["step 0: train loss 4.0, val loss 4.1", "iter 0: loss 4.0, time 9.00ms", "iter 10: loss 3.9, time 9.00ms"],
     ["nanogpt-old"]),  # nanoGPT before it logged mfu: its eval lines are of the same format
    (["step 0: train loss 4.0, val loss 4.1", "iter 0: loss 4.0, time 9.00ms, mfu -100.00%", "iter 10: loss 3.9"],
     ["nanogpt"]),  # a cut line is of the run's format
    (["step 0: train loss 4.0, val loss 4.1"], ["nanogpt"]),
    (["0 | loss 10.3708 | lr 0.000000e+00 | 2834.09ms | mfu -100.00%", "step 20: train loss 8.9, val loss 8.9"],
     ["llama2c"]),
    ([format_config({}), "iter 0: loss 4.0, time 9.00ms, mfu 5.00%"], ["plateau"]),
])
def test_nanogpt_shaped_lines_take_the_runs_format(lines, formats):
    p = parse(lines)
    assert p.formats == formats and p.runs[-1].format == formats[0]


def test_litgpt_step_and_epoch_lines_are_never_evals():
    r = parse_file(FIXTURES / "litgpt_pretrain.log").runs[0]
    assert all(e.train_loss is None for e in r.evals)  # 'val: 10.100' inside an iter line is a repeat, not an eval
    assert [x.iter for x in r.iters] == [4, 8, 12, 16, 20, 24]
    r = parse_file(FIXTURES / "litgpt_2023.log").runs[0]
    assert [e.step for e in r.evals] == [7]  # 'step 7: val loss' counts iters, as its iter lines do


# ---------------------------------------------------------------- single lines, as they come pasted

LINES = [
    # (line, what it must parse to: ('iter'|'eval', {field: value}) or None for no record)
    ("iter 600: loss 5.0956, time 3902.93ms, mfu 12.87%", ("iter", dict(iter=600, loss=5.0956, mfu=12.87))),
    ("iter 600: loss 5.0956, time 3902.93ms", ("iter", dict(iter=600, time_ms=3902.93, mfu=None))),
    ("iter 0: loss 4.2639, time 90787.59ms, mfu -100.00%", ("iter", dict(mfu=None, time_ms=90787.59))),
    ("iter 3070: loss nan", ("iter", dict(iter=3070, time_ms=None))),
    ("iter 5: loss inf, time 10.00ms, mfu 1.00%", ("iter", dict(loss=INF))),
    ("iter 5: loss NaN, time 10.00ms, mfu 1.00%", ("iter", dict(iter=5))),
    ("> iter 7: loss 3.0000, time 1.00ms, mfu 2.00%", ("iter", dict(iter=7))),
    ("> > iter 7: loss 3.0000", ("iter", dict(iter=7))),
    ("2023-03-22 09:30:39 iter 8: loss 3.0000", ("iter", dict(iter=8))),
    ("[12:00:01] iter 9: loss 3.0000, time 5.00ms", ("iter", dict(iter=9, time_ms=5.0))),
    ("2024-05-01T12:00:01Z iter 10: loss 3.0000", ("iter", dict(iter=10))),
    ("2024-05-01T12:00:01.123456+00:00 | iter 11: loss 3.0000", ("iter", dict(iter=11))),
    ("[2024-05-01 12:00:01,123] 12 | loss 3.0000 | lr 1.000000e-04 | 5.00ms | mfu 1.00%",
     ("iter", dict(iter=12, lr=1e-4, time_ms=5.0))),
    ("\x1b[32miter 13: loss 3.0000, time 1.00ms\x1b[0m", ("iter", dict(iter=13, time_ms=1.0))),
    ("xx]iter 14: loss 3.0000, time 1.00ms, mfu 2.00%", ("iter", dict(iter=14))),
    ("iter 15: loss 3.0000, time 1.00ms, mfu 2.00%   <-- loss spikes here, lr 1e-2 was too high",
     ("iter", dict(iter=15, lr=None, mfu=2.0))),
    ("step 500: train loss 5.4354, val loss 5.5328 (best so far)", ("eval", dict(step=500, val_loss=5.5328))),
    ("step 500: train loss 5.4354", ("eval", dict(step=500, train_loss=5.4354, val_loss=None))),
    ("step 3000: train loss nan, val loss nan", ("eval", dict(step=3000))),
    ("iter 600: loss 1,234.5, time 1,000.00ms, mfu 1.00%", ("iter", dict(loss=1234.5, time_ms=1000.0))),
    ("iter 600: loss 5.0, time 3.0ms, mfu n/a, lr 9.9000e-04, gnorm 0.4210, tok/s 134330, scale 65536, skipped 2",
     ("iter", dict(mfu=None, lr=9.9e-4, gnorm=0.421, tok_s=134330.0, scale=65536.0, skipped=2))),
    # build-nanogpt, llm.c, llama2.c, litgpt
    ("step    12 | loss: 6.123456 | lr 1.0000e-04 | norm: 0.5000 | dt: 400.00ms | tok/sec: 1310720.00",
     ("iter", dict(iter=12, gnorm=0.5, time_ms=400.0, tok_s=1310720.0))),
    ("step   61/74 | loss 3.208939 (+nanz)| norm 1.4800 (+nanz)| lr 3.00e-04 | 44.57 ms | -100.0% bf16 MFU | "
     "91886 tok/s", ("iter", dict(iter=61, loss=3.208939, gnorm=1.48, time_ms=44.57, mfu=None, tok_s=91886.0))),
    ("step    2/19560 | train loss 10.947313 | norm 13.9213 | lr 1.71e-06 | 2417.65 ms | 41.2% A100 fp16 MFU | "
     "216859 tok/s", ("iter", dict(iter=2, loss=10.947313, gnorm=13.9213, mfu=41.2, tok_s=216859.0))),
    ("step 0016, loss: 6.813705, norm: 0.2472, lr: 8.5586e-02, time: 112.9ms, tokens/sec: 145163.1",
     ("iter", dict(iter=16, loss=6.813705, gnorm=0.2472, lr=8.5586e-02, time_ms=112.9, tok_s=145163.1))),
    ("step    3/74: train loss 4.484756 (76.807634 ms, 53327 tok/s)", ("iter", dict(iter=3, time_ms=76.807634))),
    ("step 4: train loss 4.138443 (took 2026.846000 ms)", ("iter", dict(iter=4, time_ms=2026.846))),
    ("490 | loss 5.7543 | lr 4.900000e-05 | 8060.78ms | mfu 0.21%", ("iter", dict(iter=490, mfu=0.21))),
    ("iter 100 step 25: loss 7.1230, iter time: 350.12ms (optimizer.step)", ("iter", dict(iter=100, time_ms=350.12))),
    ("iter 100 | step 25: loss 7.1230, iter time: 350.12 ms", ("iter", dict(iter=100, time_ms=350.12))),
    ("[iter 100 step 25]: loss 7.1230, lr 1.0000000000E-04, iter time: 350.12ms", ("iter", dict(lr=1e-4))),
    ("Epoch 1 | iter 100 step 25 | loss train: 7.123, val: 6.500 | iter time: 350.12 ms (step) remaining time: 0:01:00",
     ("iter", dict(iter=100, loss=7.123, time_ms=350.12))),
    ("iter 5: loss 9.1234, iter time: 12.34ms, t: 512", ("iter", dict(iter=5, time_ms=12.34))),
    ("iter 400: val loss 6.8123, val time: 1234.56 ms", ("eval", dict(step=400, val_loss=6.8123, time_ms=1234.56))),
    ("s:7 trl:3.2000 lr:0.000600 norm:0.31", ("iter", dict(iter=7, loss=3.2, lr=6e-4, gnorm=0.31))),
    ("250 val 4.1234", ("eval", dict(step=250, val_loss=4.1234))),
    # not records
    ("iter 100 step 25: val: 6.5", None),
    ("  scaler = torch.cuda.amp.GradScaler(enabled=(dtype == 'float16'))", None),
    ("num decayed parameter tensors: 26, with 10,740,096 parameters", None),
    ("we ran step 5 twice", None),
    ("iter -1: loss 3.0", None),
    ("", None),
]


@pytest.mark.parametrize("line, want", LINES, ids=range(len(LINES)))
def test_pasted_line(line, want):
    p = parse([line])
    r = p.runs[-1]
    if want is None:
        assert r.empty()
        return
    kind, fields = want
    (rec,) = r.iters if kind == "iter" else r.evals
    assert not (r.evals if kind == "iter" else r.iters)
    got = {k: getattr(rec, k) for k in fields}
    assert all(same(got[k], fields[k]) for k in fields), got


def test_dataloader_and_model_headers_are_info():
    r = parse(["loaded 338025 tokens", "1 epoch = 20 batches", "vocab_size: 66", "num_layers: 6", "channels: 384",
               "step 0000, loss: 10.826412, norm: 0.6931, lr: 9.0000e-03, time: 19439.9ms"]).runs[-1]
    assert r.info == {"train_tokens": 338025, "epoch_iters": 20, "vocab_size": 66}
    assert r.config == {"n_layer": 6, "n_embd": 384}


def test_blank_and_whitespace_lines_are_neither_used_nor_skipped():
    p = parse(["", "   ", "\t", "> ", ">", "iter 1: loss 2.0", "junk"])
    assert (p.lines, p.used, p.skipped) == (7, 1, 1)


def test_parse_takes_text_and_bytes():
    text = "step 0: train loss 2.0, val loss 2.1\niter 0: loss 2.0\n\xff"
    for src in (text, text.encode("latin-1"), [line.encode("utf-8") for line in text.splitlines()]):
        p = parse(src)
        assert (len(p.runs[0].evals), len(p.runs[0].iters)) == (1, 1)


def test_elisions_warnings_tracebacks_and_errors_are_notes():
    lines = ["iter 0: loss 3.0, time 1.00ms", "...", "<snip>", "[... 300 lines omitted ...]",
             "iter 900: loss 2.0, time 1.00ms", "/x/train.py:196: FutureWarning: deprecated", "    dtype = 'float16'",
             "WARNING: something", "Traceback (most recent call last):", '  File "train.py", line 5, in <module>',
             "    n_layer = 48", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]
    r = one_run(lines)
    assert [(n.line, n.kind) for n in r.notes] == [(2, "elision"), (3, "elision"), (4, "elision"), (6, "warning"),
                                                   (8, "warning"), (9, "traceback"), (12, "error")]
    assert r.config == {}  # a warning's source line and a traceback's code are not config
    assert "10.5" not in [n.text for n in one_run(["iter 1: loss 1.0", "10.5"]).notes]


# ---------------------------------------------------------------- runs, resumes, config


def test_counter_starting_over_is_a_new_run_and_the_last_run_is_current():
    a = [format_eval(0, 4.0, 4.1), format_iter(0, 4.0, 1.0, 1.0), format_iter(10, 3.0, 1.0, 1.0)]
    b = [format_iter(0, 9.0, 1.0, 1.0), format_iter(10, 8.0, 1.0, 1.0), format_eval(20, 7.0, 7.1)]
    p = parse(a + ["", "some paste noise"] + b)
    assert [(len(r.evals), len(r.iters)) for r in p.runs] == [(1, 2), (1, 2)]
    assert [r.first_line for r in p.runs] == [0, 6] and p.runs[-1].iters[0].loss == 9.0


def test_two_real_logs_in_one_file_are_two_runs():
    names = ("nanogptpr225_4090_gpt2_owt_early", "nanochatgpt_adamw_finetune_noisy")
    text = [(REAL / f"{n}.log").read_text() for n in names]
    p = parse("\n".join(text))
    assert [(len(r.evals), len(r.iters)) for r in p.runs] == [(1, 20), (11, 51)]


def test_a_header_after_records_starts_a_new_run():
    cfg = format_config({"n_layer": 4})
    lines = [cfg, format_iter(0, 4.0, 1.0), format_iter(1, 3.0, 1.0), format_config({"n_layer": 8}),
             format_iter(5, 2.0, 1.0)]
    p = parse(lines)
    assert [(r.config["n_layer"], [x.iter for x in r.iters]) for r in p.runs] == [(4, [0, 1]), (8, [5])]
    nano = ["Overriding config with config/a.py:", "n_layer = 2", "", "iter 0: loss 4.0", "iter 5: loss 3.0",
            "Overriding config with config/b.py:", "n_layer = 3", "", "Initializing a new model from scratch",
            "number of parameters: 1.00M", "iter 10: loss 4.5"]
    p = parse(nano)
    assert [(r.config, r.info, len(r.iters)) for r in p.runs] == [
        ({"n_layer": 2}, {}, 2), ({"n_layer": 3}, {"num_params": 1000000}, 1)]


def test_our_resume_marker_replaces_records_from_the_resumed_iter():
    before = [format_config({"n_layer": 4}), format_eval(0, 5.0, 5.1), format_iter(0, 5.0, 1.0),
              format_eval(100, 3.0, 3.1), format_checkpoint("out", 1.0), format_iter(100, 3.0, 1.0),
              format_iter(150, 2.9, 1.0)]
    after = [format_resume(100, "out/ckpt.pt"), format_eval(100, 3.0, 3.1), format_iter(100, 3.05, 1.0),
             format_iter(200, 2.5, 1.0)]
    for restart_header in ([], [format_config({"n_layer": 4}), format_info({"num_params": 1})]):
        p = parse(before + restart_header + after)
        assert len(p.runs) == 1
        r = p.runs[0]
        assert r.resumes == [100]
        assert [(x.iter, x.loss) for x in r.iters] == [(0, 5.0), (100, 3.05), (200, 2.5)]
        assert [e.step for e in r.evals] == [0, 100]


def test_nanogpt_resuming_training_is_the_same_run():
    before = ["Overriding config with config/x.py:", "max_iters = 300", "", "step 0: train loss 5.0, val loss 5.1",
              "iter 0: loss 5.0", "step 100: train loss 3.0, val loss 3.1", "iter 100: loss 3.0", "iter 150: loss 2.9"]
    after = ["Overriding config with config/x.py:", "max_iters = 400", "", "tokens per iteration will be: 1,024",
             "Resuming training from out", "number of parameters: 1.00M", "step 100: train loss 3.0, val loss 3.1",
             "iter 100: loss 3.05"]
    p = parse(before + after)
    assert len(p.runs) == 1
    r = p.runs[0]
    assert r.config == {"max_iters": 400} and r.info == {"tokens_per_iter": 1024, "num_params": 1000000}
    assert [(x.iter, x.loss) for x in r.iters] == [(0, 5.0), (100, 3.05)] and r.resumes == [100]


def test_a_counter_going_back_inside_the_run_is_an_implicit_resume():
    lines = ["step 0: train loss 5.0, val loss 5.1", "iter 0: loss 5.0", "step 100: train loss 3.0, val loss 3.1",
             "iter 100: loss 3.0", "iter 150: loss 2.9", "step 100: train loss 3.0, val loss 3.1", "iter 100: loss 3.1"]
    r = one_run(lines)
    assert [x.iter for x in r.iters] == [0, 100] and r.iters[-1].loss == 3.1 and r.resumes == [100]
    assert [n.kind for n in r.notes] == ["resume"]


def test_config_echo_overrides_and_known_keys():
    lines = ["Overriding config with config/train_gpt2.py:", "# ~125M params", "import time", "batch_size = 12",
             "gradient_accumulation_steps = 5 * 8", "learning_rate = 6e-4 # peak", "min_lr = learning_rate / 10",
             "wandb_run_name = 'gpt2-' + str(time.time())", "out_dir = 'out#1'  # hash inside a string", "",
             "Overriding: dtype = float16", "Overriding: compile = False", "tokens per iteration will be: 491,520",
             "dropout = 0.1", "scaler = 3", "found vocab_size = 65 (inside data/x/meta.pkl)",
             "=> calculated gradient accumulation steps: 32", "Overriding: n_layer = six", "weight_decay = 0"]
    p = parse(lines)
    r = p.runs[0]
    assert r.config == {"batch_size": 12, "gradient_accumulation_steps": 40, "learning_rate": 6e-4, "min_lr": 6e-4 / 10,
                        "out_dir": "out#1", "dtype": "float16", "compile": False, "dropout": 0.1,
                        "weight_decay": 0.0}  # a key of ours keeps its type: n_layer is no string
    assert type(r.config["weight_decay"]) is float
    assert r.info == {"tokens_per_iter": 491520, "vocab_size": 65}
    assert r.comments == ["~125M params", "peak", "hash inside a string"]
    assert p.skipped == 1  # 'scaler = 3': not a training key outside the echo


# ---------------------------------------------------------------- never raises, linear time

REAL_LINES = [
    "step 500: train loss 5.4354, val loss 5.5328",
    "iter 600: loss 5.0956, time 3902.93ms, mfu 12.87%",
    "> 2023-03-22 09:32:52 iter 3010: loss nan, time 1019.95ms, mfu 14.12%",
    format_iter(600, 5.0956, 3902.93, None, 9.9e-4, 0.421, 134330, 65536, 0),
    format_eval(500, 5.4354, 5.5328, 0.0021, 0.0023, 15250.12),
    format_config({"n_layer": 12, "dropout": 0.1}), format_info({"num_params": 40562688}), format_resume(5, "c"),
    "step   61/74 | loss 3.208939 (+nanz)| norm 1.4800 (+nanz)| lr 3.00e-04 | 44.57 ms | -100.0% bf16 MFU | 9188 tok/s",
    "step     0 | loss: 10.955029 | lr 8.3916e-07 | norm: 15.4284 | dt: 34553.21ms | tok/sec: 15173.51",
    "490 | loss 5.7543 | lr 4.900000e-05 | 8060.78ms | mfu 0.21%", "0 train 10.955029", "s:0 tel:11.0091",
    "Epoch 1 | iter 100 step 25 | loss train: 7.123, val: n/a | iter time: 350.12 ms (step) remaining time: 0:00:58",
    "iter 400: val loss 6.8123, val time: 1234.56 ms", "Overriding config with config/x.py:", "n_layer = 6",
    "Overriding: dtype = float16", "number of parameters: 40.56M", "tokens per iteration will be: 16,384",
    "| learning rate (LR)    | 6.000000e-04                                       |", "Resuming training from out",
    "HellaSwag accuracy: 2473/10042=0.2463", "val loss 11.009070", "Traceback (most recent call last):",
    "saving checkpoint to out, time 812.40ms", "...",
]


@st.composite
def mangled(draw):
    line = draw(st.sampled_from(REAL_LINES))
    for _ in range(draw(st.integers(0, 4))):
        if not line:
            break
        i = draw(st.integers(0, len(line) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete":
            line = line[:i] + line[i + 1:]
        elif op == "duplicate":
            line = line[:i] + line[i] * draw(st.integers(2, 50)) + line[i + 1:]
        elif op == "swap" and i + 1 < len(line):
            line = line[:i] + line[i + 1] + line[i] + line[i + 2:]
        else:
            line = line[:i] + draw(st.sampled_from(["9" * 400, "e999", "nan", "-", ",", " ", "é", "٣", "\x00", "> ",
                                                    "(" * 300, "\r", "'", "{", "}", "|"])) + line[i:]
    return line


LINE = st.one_of(
    mangled(),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", errors="replace")),
    st.builds(lambda n, x: f"iter {n}: loss {x}, time {x}ms, mfu {x}%", st.integers(0, 10**30),
              st.floats(allow_nan=True, allow_infinity=True)),
    st.builds(lambda c, n: c * n, st.sampled_from(["9", ".", " ", "|", ">", "(", "a", "é", "1,"]),
              st.integers(1000, 30000)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINE, max_size=40))
def test_fuzz_parse_never_raises_and_counts_add_up(lines):
    p = parse(lines)
    blank = sum(not logfmt.clean(x) for x in lines)
    assert p.lines == len(lines) and p.used + p.skipped + blank == len(lines)
    assert p.runs and set(p.formats) <= set(logfmt.FORMATS)
    for r in p.runs:
        assert all(isinstance(x.iter, int) and x.iter >= 0 for x in r.iters)
        assert all(isinstance(e.step, int) for e in r.evals)
        assert r.format in (None, *logfmt.FORMATS)


def test_long_junk_lines_parse():
    """A regex that backtracks would take minutes on these; each parses here in well under a second."""
    junk = ["1" * 100_000, "iter 1: loss " + "1" * 100_000 + "x", "step 1/2 | loss 1 | " + "1%" * 50_000,
            "0 | loss 1 | " + "9 ms " * 20_000, "a =" + " " * 100_000 + "x", "." * 100_000, "| loss " * 15_000,
            "config {" + '"a":[' * 30_000 + "}", "Overriding: n_layer = " + "-" * 100_000 + "1",
            "step 5: train loss 1, val loss " + "9" * 100_000, "iter 1 step 2 | loss" + " " * 100_000 + "x",
            "number of parameters" + " " * 100_000 + "x", "iter 1" + " " * 100_000 + ": val loss" + " " * 100_000]
    p = parse(junk)
    assert p.lines == len(junk)
    assert sorted(x.iter for r in p.runs for x in r.iters) == [0, 1, 1] and p.runs[-1].config == {}
