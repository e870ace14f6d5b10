"""train.py: real tiny training runs on CPU (by subprocess, as a user runs them) and its plain functions."""

import contextlib
import glob
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import plateau.cli
import train
from model import GPT, GPTConfig
from plateau import config as configurator
from plateau import logfmt
from plateau.meta import read_meta

ROOT = Path(__file__).resolve().parents[1]
# One thread: tiny models gain nothing from two, and on a busy 2-core machine OpenMP's spinning
# threads make every op slower by an order of magnitude.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
TINY = {
    "device": "cpu", "dtype": "float32", "compile": False, "live_diagnose": False,
    "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16, "dropout": 0.1,
    "batch_size": 2, "gradient_accumulation_steps": 2,
    "learning_rate": 3e-3, "min_lr": 3e-4, "warmup_iters": 3, "lr_decay_iters": 20, "max_iters": 20,
    "eval_interval": 10, "eval_iters": 3, "log_interval": 1, "loss_chunk_tokens": 24,
}


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """prepare.py --sample: ~0.5M real GPT-2 tokens (train.bin, val.bin, meta.json)."""
    out = tmp_path_factory.mktemp("sample")
    r = subprocess.run([sys.executable, "prepare.py", "--sample", "--out-dir", str(out)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def write_config(path, data_dir, **overrides):
    values = {**TINY, "data_dir": str(data_dir), **overrides}
    path.write_text("".join(f"{k} = {v!r}\n" for k, v in values.items()))
    return path


def run_train(cfg_path, out_dir, *args, env=ENV, check=True):
    r = subprocess.run([sys.executable, "train.py", str(cfg_path), f"--out_dir={out_dir}", *args], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def straight(tmp_path_factory, sample_data):
    """20 iterations in one go: the reference for resume, the log round trip, and the error tests."""
    d = tmp_path_factory.mktemp("straight")
    cfg = write_config(d / "tiny.py", sample_data)
    r = run_train(cfg, d / "out", "--live_diagnose=True")
    return d, cfg, r


def losses(log_path):
    run = logfmt.parse_file(log_path).runs[-1]
    return [(i.iter, i.loss) for i in run.iters], [(e.step, e.train_loss, e.val_loss) for e in run.evals]


# ---------------------------------------------------------------- plain functions


def cfg_of(**kw):
    return configurator.load([f"--{k}={v!r}" for k, v in {**TINY, **kw}.items()])


def test_cosine_schedule_at_chosen_iterations():
    c = cfg_of(learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, lr_decay_iters=1100, max_iters=2000)
    assert train.get_lr(c, 0) == pytest.approx(1e-3 / 101)
    assert train.get_lr(c, 99) == pytest.approx(1e-3 * 100 / 101)
    assert train.get_lr(c, 100) == pytest.approx(1e-3)
    assert train.get_lr(c, 600) == pytest.approx(5.5e-4)  # halfway: (max + min) / 2
    assert train.get_lr(c, 1100) == pytest.approx(1e-4)
    assert train.get_lr(c, 1500) == 1e-4


def test_constant_and_wsd_schedules():
    c = cfg_of(lr_schedule="constant", warmup_iters=10, learning_rate=1e-3, min_lr=1e-4, max_iters=100)
    assert [train.get_lr(c, i) for i in (10, 50, 99)] == [1e-3] * 3
    assert train.get_lr(cfg_of(decay_lr=False, warmup_iters=0, learning_rate=1e-3), 19) == 1e-3
    w = cfg_of(lr_schedule="wsd", wsd_decay_frac=0.2, warmup_iters=10, learning_rate=1e-3, min_lr=1e-4,
               max_iters=1000)
    assert train.get_lr(w, 500) == 1e-3 and train.get_lr(w, 800) == 1e-3  # stable until 80%
    assert train.get_lr(w, 900) == pytest.approx(5.5e-4)
    assert train.get_lr(w, 1000) == pytest.approx(1e-4)
    longer = dataclasses_replace(w, max_iters=2000)  # extending before the decay keeps the LR where it was
    assert train.get_lr(longer, 500) == train.get_lr(w, 500) == 1e-3


def dataclasses_replace(c, **kw):
    return configurator.from_dict({**configurator.to_dict(c), **kw})


def tiny_setup(sample_data, seed=0, **kw):
    cfg = cfg_of(data_dir=str(sample_data), dropout=0.0, **kw)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**{k: getattr(cfg, k) for k in GPTConfig.__dataclass_fields__}))
    batches = train.Batches(cfg, read_meta(cfg.data_dir), torch.device("cpu"), 0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return cfg, model, batches, scaler


def test_logged_loss_is_the_mean_over_all_micro_steps(sample_data):
    cfg, model, batches, scaler = tiny_setup(sample_data)
    state = batches.state()
    with torch.no_grad():
        expected = [model(*batches.train())[1].item() for _ in range(4)]
    batches.set_state(state)
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    loss, gnorm, skipped = train.train_step(model, optimizer, scaler, batches, 4, contextlib.nullcontext(), 1.0, False)
    assert loss == pytest.approx(sum(expected) / 4, rel=1e-6)
    assert loss != pytest.approx(expected[-1] * 4)  # nanoGPT's last-micro-batch x accumulation (PR #207)
    assert gnorm > 0 and not skipped


def test_gradient_accumulation_matches_one_big_batch(sample_data):
    """fp32, dropout 0: 8 sequences x 1 micro-step and 4 x 2 give the same gradients.

    The sampler draws offsets one at a time from its generator, so 8 at once and 4 + 4 are the same 8.
    """
    steps = {}
    for batch_size, accum in ((8, 1), (4, 2)):
        cfg, model, batches, scaler = tiny_setup(sample_data, batch_size=batch_size)
        before = [p.detach().clone() for p in model.parameters()]
        sgd = torch.optim.SGD(model.parameters(), lr=1.0)  # the step is minus the gradient
        train.train_step(model, sgd, scaler, batches, accum, contextlib.nullcontext(), 0.0, False)
        steps[accum] = [b - p.detach() for b, p in zip(before, model.parameters(), strict=True)]
    for g1, g2 in zip(steps[1], steps[2], strict=True):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-7)


def test_eval_batches_are_fixed_and_report_standard_error(sample_data):
    cfg, model, batches, _ = tiny_setup(sample_data, eval_iters=4)
    first = train.evaluate(model, batches, cfg, contextlib.nullcontext(), 0, 1)
    batches.train()  # training draws do not move the eval set
    again = train.evaluate(model, batches, cfg, contextlib.nullcontext(), 0, 1)
    assert first == again
    per_batch = torch.tensor([model(*batches.eval_batch("val", j))[1].item() for j in range(4)], dtype=torch.float64)
    assert first["val"][0] == pytest.approx(per_batch.mean().item(), rel=1e-6)
    assert first["val"][1] == pytest.approx((per_batch.std() / 2).item(), rel=1e-5)


# ---------------------------------------------------------------- whole runs


def test_log_header_and_lines_round_trip(straight):
    d, cfg_path, r = straight
    log = d / "out" / "log.txt"
    parsed = logfmt.parse_file(log)
    assert parsed.skipped == 0 and len(parsed.runs) == 1
    run = parsed.runs[0]
    cfg = configurator.load([str(cfg_path), f"--out_dir={d / 'out'}", "--live_diagnose=True"])
    assert run.config == configurator.to_dict(cfg)
    model = GPT(GPTConfig(**{k: getattr(cfg, k) for k in GPTConfig.__dataclass_fields__}))
    meta = read_meta(cfg.data_dir)
    assert run.info["num_params"] == model.get_num_params()
    assert run.info["flops_per_token"] == model.flops_per_token()
    assert run.info["tokens_per_iter"] == 2 * 2 * 16
    assert run.info["train_tokens"] == meta["splits"]["train"]["tokens"]
    assert run.info["val_tokens"] == meta["splits"]["val"]["tokens"]
    assert run.info["peak_tflops"] is None and run.info["world_size"] == 1 and run.info["dtype"] == "float32"
    assert {"device_name", "torch_version"} <= set(run.info)
    assert [i.iter for i in run.iters] == list(range(20))
    assert [e.step for e in run.evals] == [0, 10, 20]
    assert all(e.train_se > 0 and e.val_se > 0 and e.time_ms > 0 for e in run.evals)
    assert [t is not None and t > 0 for _, t in run.checkpoints] == [True, True]  # at 10 and 20, not at 0
    assert all(i.mfu is None and i.gnorm > 0 and i.tok_s > 0 and i.lr > 0 for i in run.iters)
    lines = log.read_text().splitlines()
    by_line = {i.line: i for i in run.iters}
    for n, text in enumerate(lines, 1):  # every number written comes back: re-formatting gives the same line
        if n in by_line:
            i = by_line[n]
            assert logfmt.format_iter(i.iter, i.loss, i.time_ms, i.mfu, i.lr, i.gnorm, i.tok_s) == text
    assert [ln for ln in r.stdout.splitlines() if ln in set(lines)] == lines  # the console shows them too
    assert run.evals[-1].val_loss < run.evals[0].val_loss  # it learns
    # live diagnose ran on the log at each eval; what it prints is one line per new finding
    assert "diagnose: unavailable" not in r.stdout
    assert all(re.fullmatch(r"diagnose: \[(warning|critical)\] [a-z_]+: .+", ln)
               for ln in r.stdout.splitlines() if ln.startswith("diagnose:"))


def test_resume_is_bit_exact(straight, tmp_path):
    d, cfg_path, _ = straight
    out = tmp_path / "out"
    run_train(cfg_path, out, "--max_iters=10")
    r = run_train(cfg_path, out, "--init_from=resume")
    assert logfmt.format_resume(10, str(out / "ckpt.pt")) in (out / "log.txt").read_text()
    assert "not bit-identically" not in r.stdout
    assert losses(out / "log.txt") == losses(d / "out" / "log.txt")
    a = torch.load(d / "out" / "ckpt.pt", weights_only=True)
    b = torch.load(out / "ckpt.pt", weights_only=True)
    assert a["iter_num"] == b["iter_num"] == 20
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert not any(k.startswith(("_orig_mod.", "module.")) for k in a["model"])  # nanoGPT #325


def train_in_process(capsys, cfg_path, out_dir, *args):
    """train.py's main through the same error handling as the command line; (exit status, stderr)."""
    status = plateau.cli.run(train.main, [str(cfg_path), f"--out_dir={out_dir}", *args], prog="train.py")
    return status, capsys.readouterr().err


def test_scratch_refuses_to_replace_a_checkpoint(straight, capsys):
    d, cfg_path, _ = straight
    status, err = train_in_process(capsys, cfg_path, d / "out", "--max_iters=1")
    assert status == 2 and err.count("\n") == 1
    assert "--init_from=resume" in err and "--force=True" in err


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_model"])
def test_bad_checkpoint_is_a_one_line_error(straight, tmp_path, capsys, damage):
    d, cfg_path, _ = straight
    out = tmp_path / "out"
    out.mkdir()
    good = (d / "out" / "ckpt.pt").read_bytes()
    bad = {"garbage": b"not a checkpoint\n" * 100, "truncated": good[:len(good) // 2], "other_model": good}[damage]
    (out / "ckpt.pt").write_bytes(bad)
    args = ["--init_from=resume"] + (["--n_layer=3"] if damage == "other_model" else [])
    status, err = train_in_process(capsys, cfg_path, out, *args)
    assert status == 2 and err.count("\n") == 1 and err.startswith("train.py: error: ")
    assert ("n_layer 2 (config: 3)" if damage == "other_model" else "not a readable checkpoint") in err
    assert (out / "ckpt.pt").read_bytes() == bad  # nothing overwrote it


def test_kill_during_save_leaves_previous_checkpoint_loadable(sample_data, tmp_path):
    """kill -9 while a checkpoint is being written: ckpt.pt is the previous whole one; resume works."""
    cfg = write_config(tmp_path / "tiny.py", sample_data, n_embd=64, eval_interval=1, eval_iters=1,
                       max_iters=10_000, lr_decay_iters=10_000, log_interval=100)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "train.py", str(cfg), f"--out_dir={out}"], cwd=ROOT, env=ENV,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "ckpt.pt").exists() or not glob.glob(str(out / ".ckpt.pt.*.tmp")):
            assert p.poll() is None and time.time() < deadline, "no checkpoint save seen"
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)  # a second save is in flight
    finally:
        p.kill()
        p.wait()
    assert glob.glob(str(out / ".ckpt.pt.*.tmp"))
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] >= 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    r = run_train(cfg, out, "--init_from=resume", f"--max_iters={ckpt['iter_num'] + 1}")
    assert not glob.glob(str(out / ".ckpt.pt.*.tmp"))  # the torn temp file is cleaned up
    assert torch.load(out / "ckpt.pt", weights_only=True)["iter_num"] == ckpt["iter_num"] + 1, r.stdout


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(straight, tmp_path):
    d, cfg_path, _ = straight
    out = tmp_path / "out"
    out.mkdir()
    (out / "ckpt.pt").write_bytes((d / "out" / "ckpt.pt").read_bytes())
    r = run_train(cfg_path, out, "--init_from=resume", "--learning_rate=1e30", "--min_lr=1e29", "--max_iters=60",
                  "--lr_decay_iters=60", "--eval_interval=3", "--grad_clip=0.0", check=False)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr
    assert r.stderr.count("\n") == 1 and "not finite for 5 iterations in a row" in r.stderr
    assert "bfloat16" in r.stderr and "learning_rate" in r.stderr and "bad data" in r.stderr
    assert f"last good checkpoint, {out / 'ckpt.pt'} (iter 20), is intact" in r.stderr
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["iter_num"] == 20 and all(torch.isfinite(v).all() for v in ckpt["model"].values())
    iters = logfmt.parse_file(out / "log.txt").runs[-1].iters
    assert sum(not math.isfinite(i.loss) for i in iters) == 5  # each non-finite iteration is logged


def test_ddp_two_processes_gloo(sample_data, tmp_path):
    cfg = write_config(tmp_path / "tiny.py", sample_data, max_iters=6, eval_interval=3, lr_decay_iters=6)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "train.py", str(cfg), f"--out_dir={out}", "--backend=gloo"], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    parsed = logfmt.parse_file(out / "log.txt")
    assert parsed.skipped == 0 and len(parsed.runs) == 1  # only rank 0 writes
    run = parsed.runs[0]
    assert run.info["world_size"] == 2 and run.info["grad_accum_per_process"] == 1
    assert [i.iter for i in run.iters] == list(range(6)) and [e.step for e in run.evals] == [0, 3, 6]
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert len(ckpt["rng"]) == 2 and not torch.equal(ckpt["rng"][0]["sampler"], ckpt["rng"][1]["sampler"])


def test_wandb_offline_and_float16_fallback_on_cpu(sample_data, tmp_path):
    cfg = write_config(tmp_path / "tiny.py", sample_data, max_iters=4, eval_interval=2, lr_decay_iters=4)
    env = {**ENV, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    r = run_train(cfg, tmp_path / "out", "--wandb_log=True", "--dtype=float16", env=env)
    assert r.stdout.count("dtype float16 needs CUDA") == 1
    assert logfmt.parse_file(tmp_path / "out" / "log.txt").runs[-1].info["dtype"] == "float32"
    records = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(records) == 1
    data = Path(records[0]).read_bytes()  # protobuf records; wandb ships no reader for them offline
    assert all(key in data for key in (b"train/loss", b"val/loss", b"gnorm", b"tok_s", b"learning_rate"))


def test_help_lists_every_key():
    r = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0
    assert all(f"--{k}=" in r.stdout for k in configurator.FIELDS)


def test_vocab_larger_than_config_is_a_one_line_error(straight, tmp_path, capsys):
    _, cfg_path, _ = straight
    status, err = train_in_process(capsys, cfg_path, tmp_path / "out", "--vocab_size=1000")
    assert status == 2 and err.count("\n") == 1 and "vocab_size 1000 is too small (use 50304)" in err


def test_sample_py_generates_from_the_checkpoint(straight):
    d, _, _ = straight
    r = subprocess.run([sys.executable, "sample.py", f"--out_dir={d / 'out'}", "--num_samples=2",
                        "--max_new_tokens=8", "--start=The", "--device=cpu"], cwd=ROOT, env=ENV,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("The") and r.stdout.count("---------------") == 1


@pytest.mark.parametrize("script", ["sample.py", "train.py"])
def test_bad_device_is_a_one_line_error(script):
    args = ["--out_dir=nowhere"] if script == "sample.py" else ["config/sample_cpu.py"]
    r = subprocess.run([sys.executable, script, *args, "--device=foo"], cwd=ROOT, env=ENV, capture_output=True,
                       text=True)
    assert r.returncode == 2 and r.stderr.strip() == (f"{script}: error: device 'foo' is not a torch device "
                                                      "(try cpu, cuda, cuda:1, mps)")
