"""Dense peak TFLOPS per GPU: the one table MFU is measured against.

Figures are dense (no 2:4 sparsity) tensor-core peaks with fp32 accumulation,
which is what PyTorch training uses. GeForce cards run fp16/bf16 tensor math
with fp32 accumulation at half the rate of fp16 accumulation, the figure that
spec sheets headline; data-centre cards run both at full rate. 'tf32' is the
float32 peak with TF32 matmuls enabled (train.py enables them).

A new GPU is one row. Laptop parts share desktop names but not their SM counts or clocks,
so they are unknown (None) unless a row names them. Sources:
  turing: NVIDIA Turing GPU Architecture whitepaper, appendix table (RTX 2080 Ti reference clocks)
  ampere-ga102: NVIDIA Ampere GA102 GPU Architecture whitepaper, appendix table (RTX 3090/3080/3070)
  ampere-ga10x: SMs x boost clock x the GA102 per-SM rates (512 fp16-tensor FLOP/clk with fp32
       accumulate on GeForce, 1024 on RTX A-series; 256 fp32 FLOP/clk): 3060 28 SMs 1.777 GHz,
       3060 Ti 38 x 1.665, 3080 Ti 80 x 1.665, 3090 Ti 84 x 1.86, RTX A6000 84 x 1.80
  ada: NVIDIA Ada Lovelace GPU Architecture whitepaper v1.1, appendix tables; per-SKU figures scale
       with SM count x boost clock (4060/4060 Ti/4070/4070 Ti/4070 Super/4080/4090)
  a100, a10, l4, l40, l40s, h100, h200, v100, t4, rtx6000ada: NVIDIA product datasheets (dense
       figures: half the "with sparsity" ones)
"""

import re
from typing import NamedTuple

# nanoGPT's estimate_mfu divides by this whatever the GPU (nanoGPT #182).
A100_BF16_PEAK_TFLOPS = 312.0


class GPU(NamedTuple):
    name: str
    bf16: float | None  # TFLOPS, fp16/bf16 tensor, fp32 accumulate, dense; None: no bf16
    fp16: float
    tf32: float | None  # None: no TF32 tensor cores, float32 runs at fp32 rate
    fp32: float  # non-tensor float32
    memory_gb: float
    source: str


_TABLE = [
    #   name                   bf16    fp16    tf32    fp32   GB   source
    GPU("RTX 2080 Ti",         None,   53.8,   None,   13.4, 11, "turing"),
    GPU("RTX 3060",            25.5,   25.5,   12.7,   12.7, 12, "ampere-ga10x"),
    GPU("RTX 3060 Ti",         32.4,   32.4,   16.2,   16.2,  8, "ampere-ga10x"),
    GPU("RTX 3070",            40.6,   40.6,   20.3,   20.3,  8, "ampere-ga102"),
    GPU("RTX 3080",            59.5,   59.5,   29.8,   29.8, 10, "ampere-ga102"),
    GPU("RTX 3080 Ti",         68.2,   68.2,   34.1,   34.1, 12, "ampere-ga10x"),
    GPU("RTX 3090",            71.0,   71.0,   35.6,   35.6, 24, "ampere-ga102"),
    GPU("RTX 3090 Ti",         80.0,   80.0,   40.0,   40.0, 24, "ampere-ga10x"),
    GPU("RTX A6000",          154.8,  154.8,   77.4,   38.7, 48, "ampere-ga10x"),
    GPU("RTX 4060",            30.2,   30.2,   15.1,   15.1,  8, "ada"),
    GPU("RTX 4060 Ti",         44.2,   44.2,   22.1,   22.1,  8, "ada"),
    GPU("RTX 4070",            58.3,   58.3,   29.2,   29.1, 12, "ada"),
    GPU("RTX 4070 Super",      70.9,   70.9,   35.5,   35.5, 12, "ada"),
    GPU("RTX 4070 Ti",         80.2,   80.2,   40.1,   40.1, 12, "ada"),
    GPU("RTX 4070 Ti Super",   88.2,   88.2,   44.1,   44.1, 16, "ada"),
    GPU("RTX 4080",            97.5,   97.5,   48.7,   48.7, 16, "ada"),
    GPU("RTX 4080 Super",     104.4,  104.4,   52.2,   52.2, 16, "ada"),
    GPU("RTX 4090",           165.2,  165.2,   82.6,   82.6, 24, "ada"),
    GPU("RTX 6000 Ada",       364.2,  364.2,  182.1,   91.1, 48, "rtx6000ada"),
    GPU("A10",                125.0,  125.0,   62.5,   31.2, 24, "a10"),
    GPU("A100",               312.0,  312.0,  156.0,   19.5, 80, "a100"),
    GPU("L4",                 121.0,  121.0,   60.0,   30.3, 24, "l4"),
    GPU("L40",                181.0,  181.0,   90.5,   90.5, 48, "l40"),
    GPU("L40S",               362.1,  362.1,  183.0,   91.6, 48, "l40s"),
    GPU("H100 PCIe",          756.0,  756.0,  378.0,   51.2, 80, "h100"),
    GPU("H100 NVL",           835.5,  835.5,  417.5,   60.0, 94, "h100"),
    GPU("H100",               989.4,  989.4,  494.7,   66.9, 80, "h100"),
    GPU("H200",               989.4,  989.4,  494.7,   66.9, 141, "h200"),
    GPU("V100",                None,  125.0,   None,   15.7, 32, "v100"),
    GPU("T4",                  None,   65.0,   None,    8.1, 16, "t4"),
]


_MOBILE = re.compile(r"laptop|mobile|max-q", re.I)


def _norm(name):
    name = name.lower().replace("geforce", " ").replace("nvidia", " ").replace("tesla", " ")
    return " " + re.sub(r"[^a-z0-9]+", " ", name).strip() + " "


def lookup(device_name):
    """The table row for a name like torch.cuda.get_device_name() gives, or a user's '4070'; None if unknown.

    The longest row name found as whole words wins, so 'RTX 4070 Ti' is not read as 'RTX 4070'
    and 'A100' is not 'A10'.
    """
    if not device_name or _MOBILE.search(device_name):
        return None
    n = _norm(device_name)
    hits = [g for g in _TABLE if _norm(g.name) in n or _norm(g.name.replace("RTX ", "")) in n]
    return max(hits, key=lambda g: len(g.name)) if hits else None


def peak_tflops(device_name, dtype):
    """Dense peak for `dtype` ('bfloat16', 'float16', 'float32' with TF32 on), or None if unknown."""
    g = lookup(device_name)
    if g is None:
        return None
    if dtype == "float32":
        return g.tf32 or g.fp32
    return g.fp16 if dtype == "float16" else g.bf16


def names():
    return [g.name for g in _TABLE]
