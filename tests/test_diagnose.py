"""diagnose.py: the --json contract and the labels on the real logs, bad input, --plot, --write-config,
comparing logs, --follow, and (marked slow) tiny CPU training runs that induce one condition each."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import diagnose
from benchmarks import diagnose_scenarios as scenarios
from plateau import config as pconfig
from plateau import detectors, gpus
from plateau.cli import UsageError

ROOT = Path(__file__).resolve().parents[1]
# Real logs posted by other people, with labels (copied from shared/real_logs).
REAL = Path(__file__).parent / "fixtures" / "real_logs"
LOGS = sorted(p.stem for p in REAL.glob("*.log"))
USER = "user_run_40m_fineweb_4070"
OVERFIT = "macmini_m4_shakespeare_char_overfit"
NAN = "nanogpt215_v100_fp16_nan"
PATHOLOGY = set(detectors.KINDS) - set(detectors.NOT_PATHOLOGY)


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, str(ROOT / "diagnose.py"), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def strict_json(text):
    def reject(c):
        raise ValueError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=reject)


def label(name):
    return json.loads((REAL / f"{name}.json").read_text())


def label_args(name, tmp_path):
    """--config and --gpu as the label knows them: what the run's owner could pass."""
    cfg = label(name)["config"]
    lines = []
    for key, v in cfg.items():
        if key in pconfig.FIELDS and pconfig.FIELDS[key].type in (int, float, bool):
            try:
                lines.append(f"{key} = {pconfig.coerce(key, v)!r}")
            except UsageError:
                pass  # a prose value such as "40 (5x8, single GPU)"
    args = []
    if lines:
        path = tmp_path / f"{name}_config.py"
        path.write_text("\n".join(lines) + "\n")
        args += ["--config", path]
    gpu = gpus.lookup(cfg.get("GPU", ""))
    return args + (["--gpu", gpu.name] if gpu else [])


def warn_kinds(out):
    return {f["kind"] for f in out["findings"] if f["severity"] in ("warning", "critical")}


# ---------------------------------------------------------------- the contract on real logs


@pytest.mark.parametrize("name", LOGS)
@pytest.mark.parametrize("with_config", [False, True])
def test_real_log_json_contract(name, with_config, tmp_path):
    r = cli(REAL / f"{name}.log", "--json", *(label_args(name, tmp_path) if with_config else []))
    assert r.returncode == 0, r.stderr
    out = strict_json(r.stdout)
    assert {"facts", "findings", "parse"} <= set(out)
    assert set(out["parse"]) >= {"lines", "used", "skipped", "formats"} and out["parse"]["used"] > 0
    assert out["findings"], "a diagnosis always says something, if only 'healthy'"
    for f in out["findings"]:
        assert {"kind", "severity", "confidence", "title", "evidence", "fix"} <= set(f)
        assert f["kind"] in detectors.KINDS and f["severity"] in ("critical", "warning", "info")
        assert 0.0 <= f["confidence"] <= 1.0 and isinstance(f["evidence"], list)
    for name_, fact in out["facts"].items():
        assert {"value", "unit", "source"} <= set(fact), name_


@pytest.mark.parametrize("path", sorted((ROOT / "tests" / "fixtures" / "logs").glob("*")), ids=lambda p: p.name)
def test_other_trainers_logs_are_diagnosed(path):
    r = cli(path, "--json")
    assert r.returncode == 0, r.stderr
    out = strict_json(r.stdout)
    assert out["findings"] and out["parse"]["used"] > 0


@pytest.mark.parametrize("name", LOGS)
def test_real_log_labels(name, tmp_path):
    lab = label(name)
    r = cli(REAL / f"{name}.log", "--json", *label_args(name, tmp_path))
    raised = warn_kinds(strict_json(r.stdout))
    if lab.get("confidence") != "low":  # low-confidence labels are opinions, not facts (MISSION.md)
        for kind in lab["ground_truth"]:
            kind = {"divergence_nan": "divergence"}.get(kind, kind)
            if kind == "healthy":
                assert not raised & PATHOLOGY, raised
            elif kind in detectors.KINDS:
                assert kind in raised, raised
    assert not raised & set(lab.get("not_expected", [])), raised


def test_text_report_for_the_users_run(tmp_path):
    log = REAL / f"{USER}.log"
    r = cli(log, *label_args(USER, tmp_path))
    assert r.returncode == 0, r.stderr
    text = r.stdout.replace(str(log), "LOG")  # the path's length is the checkout's, not the report's
    order = [text.index(h) for h in ("Summary", "Findings", "Key facts", "parse:")]
    assert order == sorted(order)
    assert "capacity" in text.split("Findings")[0]  # the summary names the main cause
    assert "tokens" in text and "params" in text  # facts carry units
    assert max(len(line) for line in text.splitlines()) <= 110


def test_main_in_process_and_no_torch_at_start(capsys):
    assert diagnose.main([str(REAL / f"{NAN}.log"), "--json"]) == 0
    assert "divergence" in warn_kinds(strict_json(capsys.readouterr().out))
    code = (f"import sys, diagnose; diagnose.main([{str(REAL / f'{NAN}.log')!r}]); "
            "bad = {'torch', 'matplotlib'} & set(sys.modules); assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_several_runs_in_one_file(tmp_path):
    log = tmp_path / "two.log"
    log.write_text((REAL / f"{OVERFIT}.log").read_text() + (REAL / f"{USER}.log").read_text())
    first = strict_json(cli(log, "--json", "--run", 0).stdout)
    last = strict_json(cli(log, "--json").stdout)
    assert (first["run"], last["run"], last["runs_in_file"]) == (0, 1, 2)
    assert "overfitting" in warn_kinds(first) and "overfitting" not in warn_kinds(last)
    assert last["facts"]["iters_done"]["value"] == 20000


# ---------------------------------------------------------------- unusable input: exit 2, one line


def bad_inputs(tmp_path):
    log = REAL / f"{USER}.log"
    junk = tmp_path / "junk.log"
    junk.write_text("hello\nTraceback (most recent call last):\n  nothing here\n")
    empty = tmp_path / "empty.log"
    empty.write_text("")
    broken = tmp_path / "broken.py"
    broken.write_text("n_layer = = 3\n")
    typo = tmp_path / "typo.py"
    typo.write_text("lr = 1e-3\n")
    badmeta = tmp_path / "badmeta"
    badmeta.mkdir()
    (badmeta / "meta.json").write_text("{not json")
    exists = tmp_path / "exists.png"
    exists.write_bytes(b"x")
    return {
        "missing": ([tmp_path / "nope.log"], "no such log file"),
        "directory": ([tmp_path], "is a directory"),
        "no training lines": ([junk], "no training lines"),
        "empty file": ([empty], "no training lines"),
        "config missing": ([log, "--config", tmp_path / "nope.py"], "no such file"),
        "config broken": ([log, "--config", broken], "failed"),
        "config typo": ([log, "--config", typo], "did you mean learning_rate"),
        "meta missing": ([log, "--meta", tmp_path / "nope"], "no such file"),
        "meta broken": ([log, "--meta", badmeta], "not valid JSON"),
        "gpu unknown": ([log, "--gpu", "Voodoo 5"], "RTX 4070"),
        "plot exists": ([log, "--plot", exists], "--force"),
        "plot no dir": ([log, "--plot", tmp_path / "no" / "dir" / "p.png"], "does not exist"),
        "plot format": ([log, "--plot", tmp_path / "p.xyz"], "format"),
        "config target exists": ([log, "--write-config", exists], "--force"),
        "run out of range": ([log, "--run", 5], "holds 1 run"),
        "unknown flag": ([log, "--frobnicate"], "unrecognized"),
    }


def test_unusable_input_exits_2_with_one_line(tmp_path):
    for case, (args, needle) in bad_inputs(tmp_path).items():
        r = cli(*args)
        assert r.returncode == 2, (case, r.stderr)
        assert r.stdout == "" and "Traceback" not in r.stderr, case
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("diagnose.py: error:"), (case, r.stderr)
        assert needle in lines[0], (case, lines[0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_plot_dir_exits_2(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    with pytest.raises(UsageError, match="not writable"):
        diagnose.main([str(REAL / f"{USER}.log"), "--plot", str(ro / "p.png")])


# ---------------------------------------------------------------- outputs


@pytest.mark.parametrize("name", [USER, NAN])
def test_plot_writes_a_png(name, tmp_path):
    png = tmp_path / "plot.png"
    r = cli(REAL / f"{name}.log", "--plot", png, *label_args(name, tmp_path))
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert cli(REAL / f"{name}.log", "--plot", png).returncode == 2  # exists
    assert cli(REAL / f"{name}.log", "--plot", png, "--force").returncode == 0


def expected_changes(findings):
    """The union of the findings' changes, warning and critical first, the higher-ranked finding winning."""
    out = {}
    for f in sorted(findings, key=lambda f: f["severity"] == "info"):
        for key, v in (f.get("changes") or {}).items():
            if key in pconfig.FIELDS:
                out.setdefault(key, (v, f["kind"]))
    return out


@pytest.mark.parametrize("name", [USER, OVERFIT, NAN])
def test_write_config_loads_and_explains_each_change(name, tmp_path):
    args = [REAL / f"{name}.log", *label_args(name, tmp_path)]
    findings = strict_json(cli(*args, "--json").stdout)["findings"]
    path = tmp_path / "next.py"
    r = cli(*args, "--write-config", path)
    assert r.returncode == 0, r.stderr
    cfg = pconfig.load([str(path)])
    text = path.read_text()
    want = expected_changes(findings)
    if name == USER:
        assert want, "the user's run gets a next experiment"
    for key, (v, kind) in want.items():
        assert getattr(cfg, key) == pytest.approx(v), key
        line = next(line for line in text.splitlines() if line.startswith(f"{key} = "))
        if "; was " in line:  # changed from the base value: the line names its finding, the block its effect
            assert f"# {kind}; was " in line, line
            assert f"# {kind} [" in text
    assert cli(*args, "--write-config", path).returncode == 2  # exists, no --force


def test_compare_two_logs_at_equal_tokens(tmp_path):
    args = label_args(USER, tmp_path)
    better = tmp_path / "better.log"
    lines = []
    for line in (REAL / f"{USER}.log").read_text().splitlines():
        if line.startswith("step "):  # the same run with val 0.1 lower everywhere
            head, val = line.rsplit("val loss ", 1)
            line = f"{head}val loss {float(val) - 0.1:.4f}"
        lines.append(line)
    better.write_text("\n".join(lines) + "\n")
    r = cli(REAL / f"{USER}.log", better, "--json", *args)
    assert r.returncode == 0, r.stderr
    out = strict_json(r.stdout)
    assert {"facts", "findings", "parse", "runs", "comparison"} <= set(out) and len(out["runs"]) == 2
    cmp = out["comparison"]
    assert cmp["axis"] == "tokens" and cmp["best"] == 1 and cmp["at"] == pytest.approx(20000 * 524288)
    assert cmp["rows"][0]["delta_nats"] == pytest.approx(0.1, abs=1e-6)
    text = cli(REAL / f"{USER}.log", better, *args).stdout
    assert "better.log is better than" in text and "0.1000 nats" in text


def test_follow_prints_new_findings_as_the_log_grows(tmp_path):
    lines = (REAL / f"{OVERFIT}.log").read_text().splitlines(keepends=True)
    log = tmp_path / "log.txt"
    log.write_text("".join(lines[:242]))  # up to step 1750, val's minimum
    p = subprocess.Popen([sys.executable, str(ROOT / "diagnose.py"), str(log), "--follow", "--interval", "0.2",
                          "--follow-timeout", "3"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    with open(log, "a") as f:
        f.write("".join(lines[242:]))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    printed = [re.match(r"iter \d+: \[(\w+) \d+%\] (\w+):", line).groups() for line in out.splitlines()]
    assert len(printed) == len(set(printed)), out  # each kind and severity once
    assert any(line.startswith("iter 5000:") and "overfitting" in line for line in out.splitlines()), out
    assert not any(line.startswith("iter 1750:") and "overfitting" in line for line in out.splitlines()), out


def test_meta_gives_dataset_tokens_and_epochs(scenario_data, tmp_path):
    _, dirs = scenario_data
    for meta in (dirs["small"], os.path.join(dirs["small"], "meta.json")):
        out = strict_json(cli(REAL / f"{USER}.log", "--json", "--meta", meta, *label_args(USER, tmp_path)).stdout)
        tokens = json.loads(Path(dirs["small"], "meta.json").read_text())["splits"]["train"]["tokens"]
        assert out["facts"]["dataset_tokens"]["value"] == tokens and out["facts"]["dataset_tokens"]["source"] == "meta"
        assert out["facts"]["epochs"]["value"] == pytest.approx(20000 * 524288 / tokens, rel=1e-3)


def test_help_explains_every_flag():
    r = cli("--help")
    assert r.returncode == 0
    for flag in ("--config", "--meta", "--gpu", "--run", "--json", "--plot", "--follow", "--interval",
                 "--follow-timeout", "--write-config", "--force"):
        assert flag in r.stdout, flag


def test_follow_stops_on_ctrl_c_with_status_0(tmp_path):
    log = tmp_path / "log.txt"
    shutil.copy(REAL / f"{USER}.log", log)
    p = subprocess.Popen([sys.executable, str(ROOT / "diagnose.py"), str(log), "--follow", "--json", "--interval",
                          "0.2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()  # a finding, once the first pass is done
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "kind" in strict_json(first) and "iter" in strict_json(first)


# ---------------------------------------------------------------- tiny real training runs (slow)
# Shorter versions of benchmarks/diagnose_scenarios.py's runs (same configs, same data remap), for the
# scenarios that are reliable at this scale; ~1 min together on 2 idle cores. Deselect with -m "not slow".


@pytest.fixture(scope="session")
def scenario_data(tmp_path_factory):
    work = tmp_path_factory.mktemp("scenarios")
    return str(work), scenarios.prepare_data(str(work))


@pytest.mark.slow
@pytest.mark.parametrize("name,scale", [("healthy", 0.5), ("lr_high", 0.25), ("eval_iters_1", 0.5),
                                        ("repeated_data", 0.5)])
def test_scenario_is_diagnosed(name, scale, scenario_data):
    work, dirs = scenario_data
    out, _ = scenarios.run_scenario(name, dirs, work, scale)
    assert scenarios.correct(name, out), [(f["kind"], f["severity"], f["title"]) for f in out["findings"]]
