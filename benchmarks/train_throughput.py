"""Tokens/s and MFU of train.py's training step against a plain eager PyTorch loop: same model, batch, dtype.

    python benchmarks/train_throughput.py                    # CPU: the sample_cpu model, float32
    python benchmarks/train_throughput.py --device=cuda      # + GPT-2 124M bf16 compile, fineweb_4070 memory
    python benchmarks/train_throughput.py --repeats=7 --steps=5 --data_dir=data/sample

The eager loop is nanoGPT's: model(X, Y) with the full (B, T, V) logits, logits kept until the
next forward, no compile. Ours is train.train_step: the chunked lm_head + cross-entropy, logits
never held, torch.compile on CUDA. Both start from the same weights and draw the same batches;
each is warmed up (compile included), then timed over --repeats windows of --steps optimizer
steps (CUDA synchronised), and the median window is reported. On CUDA it also measures the
peak memory (torch.cuda.max_memory_allocated) of config/fineweb_4070.py's step (fp16, compile)
at batch_size 8 and 16; on CPU it estimates that memory from the tensors autograd saves.
Last line: train_vs_eager=RATIO (our tokens/s over the eager loop's).
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train  # noqa: E402
from model import GPT, GPTConfig, model_args  # noqa: E402
from plateau import config as configurator  # noqa: E402
from plateau import gpus  # noqa: E402
from plateau.meta import read_meta  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def eager_step(model, optimizer, scaler, batches, grad_accum, ctx, grad_clip):
    """nanoGPT's inner loop, as train.py had it before: full logits, `logits, loss` kept alive."""
    x, y = batches.train()
    for _ in range(grad_accum):
        with ctx:
            logits, loss = model(x, y)
            loss = loss / grad_accum
        x, y = batches.train()
        scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def build(cfg, device, chunk, compile_):
    torch.manual_seed(cfg.seed)
    raw = GPT(GPTConfig(**{**model_args(cfg), "loss_chunk_tokens": chunk})).to(device)
    optimizer = raw.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), device.type)
    return raw, (torch.compile(raw) if compile_ else raw), optimizer


def measure(cfg, device, dtype, ours, args):
    """Median tokens/s over the timed windows, and peak CUDA memory in GiB (None on CPU)."""
    raw, model, optimizer = build(cfg, device, cfg.loss_chunk_tokens if ours else 0, ours and cfg.compile)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "float16")
    ctx = contextlib.nullcontext() if dtype == "float32" else torch.autocast(device.type, getattr(torch, dtype))
    batches = train.Batches(cfg, read_meta(cfg.data_dir), device, 0)
    accum = cfg.gradient_accumulation_steps

    def step():
        if ours:
            train.train_step(model, optimizer, scaler, batches, accum, ctx, cfg.grad_clip, False)
        else:
            eager_step(model, optimizer, scaler, batches, accum, ctx, cfg.grad_clip)

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        if cuda:
            torch.cuda.synchronize()
        rates.append(args.steps * accum * cfg.batch_size * cfg.block_size / (time.perf_counter() - t0))
    peak_mem = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    return statistics.median(rates), raw.flops_per_token(), peak_mem  # the model is freed on return


def compare(name, cfg, device, dtype, args):
    peak = gpus.peak_tflops(torch.cuda.get_device_name(device), dtype) if device.type == "cuda" else None
    results = {}
    for label, ours in (("eager", False), ("train.py", True)):
        tok_s, fpt, mem = measure(cfg, device, dtype, ours, args)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        mfu = f"{100 * fpt * tok_s / (peak * 1e12):.1f}%" if peak else "n/a"
        mem_s = f", peak memory {mem:.2f} GiB" if mem is not None else ""
        print(f"{name} {label:>8}: {tok_s:,.0f} tokens/s, mfu {mfu}{mem_s}", flush=True)
        results[label] = tok_s
    return results["train.py"] / results["eager"]


def memory_of_4070_config(device, data_dir, args):
    """Peak memory of config/fineweb_4070.py's step (fp16, compile) at batch 8, 16 and 24, one micro-step each."""
    for batch_size in (8, 16, 24):
        cfg = configurator.load([os.path.join(ROOT, "config/fineweb_4070.py"), f"--data_dir={data_dir}",
                                 f"--batch_size={batch_size}", "--gradient_accumulation_steps=2"])
        small = argparse.Namespace(warmup=2, repeats=1, steps=1)
        try:
            tok_s, _, mem = measure(cfg, device, "float16", True, small)
            print(f"fineweb_4070 micro-batch {batch_size} x 1024, fp16, compile: peak memory {mem:.2f} GiB "
                  f"({tok_s:,.0f} tokens/s)", flush=True)
        except torch.OutOfMemoryError:
            print(f"fineweb_4070 micro-batch {batch_size} x 1024: out of memory on this GPU", flush=True)
            torch.cuda.empty_cache()


def estimated_memory_gib(batch_sizes):
    """CPU stand-in for the CUDA figure, {batch_size: GiB} for config/fineweb_4070.py's micro-batch.

    Weights, grads and AdamW state (16 bytes per fp32 parameter), plus the tensors autograd saves
    in one eager 16-bit forward, counted with saved_tensors_hooks at batch 1 and 2 and extrapolated
    linearly in the batch (compile fuses kernels and saves less), plus the loss's live (chunk, V)
    logits (16-bit) and their fp32 log-softmax. Allocator overhead and workspaces are not counted.
    The forward runs on fake tensors (shapes and dtypes, no data): a real bf16 forward of 124M on
    a CPU without bf16 units takes minutes and gives the same count.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    cfg = configurator.load([os.path.join(ROOT, "config/fineweb_4070.py")])
    saved = []
    with FakeTensorMode():
        model = GPT(GPTConfig(**model_args(cfg)))
        states = 16 * sum(p.numel() for p in model.parameters())
        for b in (1, 2):
            sizes = {}

            def pack(t, sizes=sizes):
                sizes[(t.untyped_storage()._cdata, t.storage_offset(), t.numel())] = t.numel() * t.element_size()
                return t  # a tensor saved by several ops counts once

            x = torch.randint(0, 50257, (b, cfg.block_size))
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", torch.bfloat16):
                model(x, x)
            saved.append(sum(sizes.values()))
    per_seq, fixed = saved[1] - saved[0], 2 * saved[0] - saved[1]
    chunk = cfg.loss_chunk_tokens * cfg.vocab_size * (2 + 4)
    return {b: (states + fixed + b * per_seq + chunk) / 2**30 for b in batch_sizes}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda")
    p.add_argument("--data_dir", default=None, help="a prepare.py data directory (default: a fresh --sample)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (compile happens here)")
    p.add_argument("--repeats", type=int, default=5, help="timed windows; the median is reported")
    p.add_argument("--steps", type=int, default=3, help="optimizer steps per timed window")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = os.path.join(tmp, "sample")
            subprocess.run([sys.executable, os.path.join(ROOT, "prepare.py"), "--sample", "--out-dir", data_dir],
                           check=True, capture_output=True)
        print(f"torch {torch.__version__}, device {device}"
              + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
                 f" ({torch.get_num_threads()} threads)"), flush=True)
        # the sample_cpu model (the README demo), 2 micro-steps per step, float32
        cpu = configurator.load([os.path.join(ROOT, "config/sample_cpu.py"), f"--data_dir={data_dir}",
                                 "--gradient_accumulation_steps=2", f"--device={device.type}"])
        ratio = compare("sample_cpu 4x64, 8x64 x2, float32:", cpu, device, "float32", args)
        if device.type == "cuda":
            gpt2 = configurator.load([os.path.join(ROOT, "config/fineweb_4070.py"), f"--data_dir={data_dir}",
                                      "--gradient_accumulation_steps=1", "--dtype=bfloat16"])
            ratio = compare("gpt2-124M 8x1024, bfloat16, compile:", gpt2, device, "bfloat16", args)
            memory_of_4070_config(device, data_dir, args)
        else:
            for b, gib in estimated_memory_gib((8, 12, 16, 24)).items():
                print(f"fineweb_4070 micro-batch {b} x 1024, 16-bit, eager: ~{gib:.1f} GiB estimated "
                      "(CPU count of saved tensors; run with --device=cuda to measure)", flush=True)
    print(f"train_vs_eager={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
