"""Generate text from a checkpoint that train.py wrote.

    python sample.py --out_dir=out-sample
    python sample.py --out_dir=out-fineweb --start="The meaning of life is" --num_samples=3 --max_new_tokens=200
    python sample.py --out_dir=out-fineweb --start=FILE:prompt.txt --device=cuda --dtype=bfloat16 --top_k=50

Each sample starts with EOT (prepare.py writes every document as EOT + its tokens, so this is
how the model saw the start of a document) followed by --start, and ends at the model's next
EOT or after --max_new_tokens tokens.
"""

import argparse
import contextlib
import os
import sys

import torch

import plateau.cli
from model import load_checkpoint, model_from_checkpoint, torch_device
from plateau.cli import UsageError
from plateau.tokenizer import EOT, get_encoding


def parse_args(argv):
    p = argparse.ArgumentParser(prog="sample.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out_dir", default="out", help="directory holding train.py's ckpt.pt (default: out)")
    p.add_argument("--start", default="",
                   help="prompt text, or FILE:path to read it from a file (default: empty, a fresh document)")
    p.add_argument("--num_samples", type=int, default=3, help="samples to draw (default: 3)")
    p.add_argument("--max_new_tokens", type=int, default=200, help="tokens generated per sample (default: 200)")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="divides the logits: < 1 sharper, > 1 more random (default: 0.8)")
    p.add_argument("--top_k", type=int, default=200, help="sample among the k likeliest tokens; 0: all (default: 200)")
    p.add_argument("--seed", type=int, default=1337, help="sampling seed (default: 1337)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="autocast dtype on CUDA (default: float32)")
    args = p.parse_args(argv)
    if args.num_samples < 1 or args.max_new_tokens < 1 or args.temperature <= 0 or args.top_k < 0:
        raise UsageError("num_samples and max_new_tokens must be >= 1, temperature > 0, top_k >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    start = args.start
    if start.startswith("FILE:"):
        try:
            with open(start[5:], encoding="utf-8") as f:
                start = f.read()
        except OSError as e:
            raise UsageError(f"cannot read prompt file {start[5:]}: {e.strerror}") from None
    device = torch_device(args.device)
    path = os.path.join(args.out_dir, "ckpt.pt")
    ckpt = load_checkpoint(path)
    model = model_from_checkpoint(ckpt, path, dropout=0.0)
    del ckpt
    model.eval().to(device)
    enc = get_encoding()
    prompt = [EOT] + enc.encode(start, allowed_special={"<|endoftext|>"})
    if len(prompt) > model.config.block_size:
        prompt = prompt[-model.config.block_size:]  # the model sees at most block_size tokens
    ctx = (torch.autocast(device.type, dtype=getattr(torch, args.dtype))
           if device.type == "cuda" and args.dtype != "float32" else contextlib.nullcontext())
    gen = torch.Generator(device=device).manual_seed(args.seed)
    x = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, T)
    with ctx:
        for k in range(args.num_samples):
            y = model.generate(x, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k or None,
                               n_vocab=enc.n_vocab, generator=gen)[0, len(prompt):].tolist()
            if EOT in y:
                y = y[:y.index(EOT)]
            print(("" if k == 0 else "---------------\n") + start + enc.decode(y), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(plateau.cli.run(main))
