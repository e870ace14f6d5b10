"""plateau/config.py: the configurator's rules, in-process and through train.py (exit 2, one line)."""

import subprocess
import sys
from pathlib import Path

import pytest

from plateau import config as configurator
from plateau.cli import UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_then_file_then_flags_left_to_right(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("import math\nn_layer = 6\nlearning_rate = 1e-3\n_private = 1\ndef helper():\n    pass\n")
    c = configurator.load([str(f), "--n_layer=4", "--dropout=0.1", "--device=cpu"])
    assert (c.n_layer, c.learning_rate, c.dropout, c.device, c.n_head) == (4, 1e-3, 0.1, "cpu", 12)
    with pytest.raises(AttributeError):
        c.n_layer = 3  # frozen: scripts cannot change it behind the log's back


def test_int_widens_to_float_nothing_else_changes_type():
    assert configurator.load(["--learning_rate=1"]).learning_rate == 1.0  # nanoGPT rejects this
    for arg, msg in [("--n_layer=2.5", "n_layer (command line) must be int, got float 2.5"),
                     ("--compile=yes", "compile (command line) must be bool, got str 'yes'"),
                     ("--batch_size=True", "batch_size (command line) must be int, got bool True")]:
        with pytest.raises(UsageError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            configurator.load([arg])


@pytest.mark.parametrize("key, hint", [("lr", "learning_rate"), ("learning_rat", "learning_rate"),
                                        ("grad_accum", "gradient_accumulation_steps"), ("n_layers", "n_layer")])
def test_unknown_key_suggests_the_right_one(key, hint):
    with pytest.raises(UsageError, match=f"unknown key '{key}' \\(command line\\) \\(did you mean {hint}\\?\\)"):
        configurator.load([f"--{key}=1"])


@pytest.mark.parametrize("args, msg", [
    (["--n_embd=100", "--n_head=12"], "n_embd (100) must be divisible by n_head (12)"),
    (["--min_lr=1e-2"], "need 0 <= min_lr <= learning_rate"),
    (["--warmup_iters=700000"], "lr_decay_iters (600000) must exceed warmup_iters (700000)"),
    (["--dtype=fp16"], "dtype must be one of auto, float32, bfloat16, float16"),
    (["--loss_chunk_tokens=-1"], "loss_chunk_tokens must be >= 0"),
    (["--batch_size=0"], "batch_size must be positive"),
])
def test_broken_invariants(args, msg):
    with pytest.raises(UsageError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        configurator.load(args)


def test_bad_config_files(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("n_layer = 1 +\n")
    with pytest.raises(UsageError, match="config file .*bad.py failed: SyntaxError"):
        configurator.load([str(f)])
    f.write_text("lr = 1e-3\n")
    with pytest.raises(UsageError, match=r"unknown key 'lr' in .*bad.py \(did you mean learning_rate\?\)"):
        configurator.load([str(f)])
    with pytest.raises(UsageError, match="cannot read config file"):
        configurator.load([str(tmp_path / "missing.py")])
    with pytest.raises(UsageError, match="expected --key=value"):
        configurator.load(["--compile"])


def test_saved_dict_round_trips():
    c = configurator.load(["config/fineweb_4070.py"])
    assert configurator.from_dict(configurator.to_dict(c)) == c
    with pytest.raises(UsageError, match="unknown key 'foo'"):
        configurator.from_dict({**configurator.to_dict(c), "foo": 1})


def test_shipped_configs_load_and_say_what_they_claim():
    big = configurator.load(["config/fineweb_4070.py"])
    assert (big.n_layer, big.n_head, big.n_embd, big.block_size, big.dtype, big.compile) == (12, 12, 768, 1024,
                                                                                              "float16", True)
    assert big.batch_size * big.block_size * big.gradient_accumulation_steps == 524_288
    assert big.batch_size >= 12  # stock nanoGPT's 12 fits a 12 GB card; ours holds no logits, so more does
    assert (big.learning_rate, big.min_lr, big.lr_decay_iters) == (6e-4, 6e-5, big.max_iters)
    user = configurator.load(["config/fineweb_4070_40m.py"])
    assert (user.n_layer, user.n_head, user.n_embd, user.bias, user.dropout) == (12, 12, 384, False, 0.1)
    assert (user.batch_size, user.gradient_accumulation_steps, user.learning_rate, user.min_lr) == (16, 32, 1e-3, 1e-4)
    assert (user.beta2, user.warmup_iters, user.lr_decay_iters, user.max_iters) == (0.99, 500, 20000, 20000)
    assert (user.eval_interval, user.eval_iters, user.log_interval, user.dtype) == (500, 200, 200, "float16")
    cpu = configurator.load(["config/sample_cpu.py"])
    assert (cpu.device, cpu.dtype, cpu.compile, cpu.data_dir, cpu.out_dir) == ("cpu", "float32", False,
                                                                                "data/sample", "out-sample")


def test_help_text_names_every_key_with_its_meaning():
    text = configurator.help_text()
    for name, f in configurator.FIELDS.items():
        assert f"--{name}=" in text and f.metadata["help"] in text


@pytest.mark.parametrize("args, msg", [
    (["--lr=3e-4"], "unknown key 'lr' (command line) (did you mean learning_rate?)"),
    (["--n_layer=2.5"], "n_layer (command line) must be int, got float 2.5"),
    (["--n_embd=100"], "n_embd (100) must be divisible by n_head (12)"),
])
def test_train_py_config_errors_exit_2_with_one_line(args, msg):
    r = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("train.py: error: ") and r.stderr.count("\n") == 1
    assert msg in r.stderr and r.stdout == ""
