"""plateau/gpus.py: peak lookup by the names torch.cuda.get_device_name() returns."""

import pytest

from plateau import gpus


@pytest.mark.parametrize("name, dtype, peak", [
    ("NVIDIA GeForce RTX 4070", "float16", 58.3),
    ("NVIDIA GeForce RTX 4070", "bfloat16", 58.3),
    ("NVIDIA GeForce RTX 4070", "float32", 29.2),  # TF32, which train.py enables
    ("NVIDIA GeForce RTX 4070 Ti", "bfloat16", 80.2),  # not read as the 4070
    ("NVIDIA GeForce RTX 4070 SUPER", "bfloat16", 70.9),
    ("NVIDIA GeForce RTX 4070 Ti SUPER", "bfloat16", 88.2),
    ("NVIDIA GeForce RTX 4090", "bfloat16", 165.2),
    ("NVIDIA GeForce RTX 3090", "float16", 71.0),
    ("NVIDIA A100-SXM4-80GB", "bfloat16", 312.0),
    ("NVIDIA A100-PCIE-40GB", "bfloat16", 312.0),
    ("NVIDIA A10", "bfloat16", 125.0),  # not read as the A100
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989.4),
    ("NVIDIA H100 PCIe", "bfloat16", 756.0),
    ("NVIDIA H100 NVL", "bfloat16", 835.5),
    ("NVIDIA L40S", "bfloat16", 362.1),
    ("NVIDIA L4", "bfloat16", 121.0),
    ("Tesla T4", "float16", 65.0),
    ("Tesla V100-SXM2-16GB", "float16", 125.0),
    ("4070", "float16", 58.3),  # what a user types for diagnose --gpu
])
def test_known_gpus(name, dtype, peak):
    assert gpus.peak_tflops(name, dtype) == peak


@pytest.mark.parametrize("name", ["", None, "cpu", "mps", "Apple M2 Max", "NVIDIA GeForce RTX 4070 Laptop GPU",
                                  "NVIDIA GeForce RTX 3080 Ti Laptop GPU", "NVIDIA GH200 480GB", "AMD Instinct MI300X"])
def test_unknown_devices_have_no_peak(name):
    assert gpus.lookup(name) is None and gpus.peak_tflops(name, "bfloat16") is None


def test_no_bf16_on_turing_and_volta():
    assert gpus.peak_tflops("Tesla T4", "bfloat16") is None
    assert gpus.peak_tflops("NVIDIA GeForce RTX 2080 Ti", "bfloat16") is None


def test_table_is_consistent():
    assert len(set(gpus.names())) == len(gpus.names())
    for g in gpus._TABLE:
        assert g.fp16 > 0 and g.fp32 > 0 and (g.bf16 is None or g.bf16 == g.fp16), g
        assert g.tf32 is None or g.fp32 <= g.tf32 * 1.01 <= g.fp16, g  # GeForce tf32 == fp32 rate


def test_the_users_mfu_against_the_right_gpu():
    """MISSION fact 4: nanoGPT's 12.9% of an A100's 312 TFLOPS is ~69% of an RTX 4070's real peak."""
    achieved = 0.129 * gpus.A100_BF16_PEAK_TFLOPS
    assert achieved == pytest.approx(40.2, abs=0.1)
    assert achieved / gpus.peak_tflops("NVIDIA GeForce RTX 4070", "bfloat16") == pytest.approx(0.69, abs=0.01)
