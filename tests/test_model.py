"""model.py: nanoGPT's parameter count and FLOPs, the chunked loss against the stock one, checkpoints."""

import pytest
import torch
import torch.nn.functional as F

from model import GPT, GPTConfig, LinearCrossEntropy, load_checkpoint, model_from_checkpoint
from plateau import logfmt
from plateau.cli import UsageError


def meta_model(**kw):
    with torch.device("meta"):  # shapes only: no memory, no init time
        return GPT(GPTConfig(**kw))


def test_parameter_counts_as_nanogpt_prints_them():
    user = meta_model(n_layer=12, n_head=12, n_embd=384, block_size=1024, bias=False, vocab_size=50304)
    assert user.get_num_params() == 40_560_000  # 12 x 12 x 384^2 + 50304 x 384 + ln_f: not "~125M"
    assert logfmt.format_num_params(user.get_num_params()) == "number of parameters: 40.56M"
    small = meta_model(n_layer=12, n_head=12, n_embd=768, block_size=1024, bias=False, vocab_size=50304)
    assert logfmt.format_num_params(small.get_num_params()) == "number of parameters: 123.59M"
    gpt2 = meta_model(bias=True, vocab_size=50257)  # GPT-2 small's own shape: nanoGPT prints 123.65M
    assert logfmt.format_num_params(gpt2.get_num_params()) == "number of parameters: 123.65M"
    assert gpt2.get_num_params(non_embedding=False) - gpt2.get_num_params() == 1024 * 768


def test_flops_per_token_is_6n_plus_attention():
    user = meta_model(n_layer=12, n_head=12, n_embd=384, block_size=1024, bias=False)
    assert user.flops_per_token() == 6 * 40_560_000 + 12 * 12 * 12 * 32 * 1024
    small = meta_model(bias=False)
    assert small.flops_per_token() == 6 * small.get_num_params() + 12 * 12 * 12 * 64 * 1024
    # nanoGPT's estimate_mfu on the user's log: 12.87% of an A100 at 3917.80 ms per 524,288 tokens
    assert 100 * user.flops_per_token() * 524_288 / 3.9178 / 312e12 == pytest.approx(12.87, abs=0.01)


@pytest.mark.parametrize("chunk", [1, 7, 48, 1000])
def test_chunked_loss_and_gradients_equal_the_stock_path(chunk):
    torch.manual_seed(0)
    chunked = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=300, loss_chunk_tokens=chunk))
    stock = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=300, loss_chunk_tokens=0))
    stock.load_state_dict(chunked.state_dict())
    x, y = torch.randint(0, 300, (3, 16)), torch.randint(0, 300, (3, 16))
    y[0, :5] = -1  # ignore_index, as nanoGPT's cross_entropy call
    logits_c, loss_c = chunked(x, y)
    logits_s, loss_s = stock(x, y)
    assert logits_c is None and logits_s.shape == (3, 16, 300)  # no (B, T, V) logits outlive a chunked call
    torch.testing.assert_close(loss_c, loss_s)
    (loss_c * 3).backward()  # a scale, like GradScaler's, reaches the saved gradients through grad_output
    (loss_s * 3).backward()
    for (name, a), b in zip(chunked.named_parameters(), stock.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():  # eval: the same loss, no gradient work
        torch.testing.assert_close(chunked(x, y)[1], loss_s.detach())


def test_linear_cross_entropy_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 4, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 6, -1, 3, 3])
    assert torch.autograd.gradcheck(lambda a, b: LinearCrossEntropy.apply(a, b, t, 2), (x, w))
    torch.testing.assert_close(LinearCrossEntropy.apply(x, w, t, 2), F.cross_entropy(x @ w.t(), t, ignore_index=-1))


def test_inference_returns_last_position_logits_and_generate_extends():
    torch.manual_seed(0)
    m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=64)).eval()
    idx = torch.randint(0, 64, (2, 5))
    logits, loss = m(idx)
    assert logits.shape == (2, 1, 64) and loss is None
    out = m.generate(idx, 12, top_k=5, n_vocab=50, generator=torch.Generator().manual_seed(0))  # crops to block 8
    assert out.shape == (2, 17) and torch.equal(out[:, :5], idx) and int(out[:, 5:].max()) < 50


def test_checkpoint_loading_strips_wrapper_prefixes_and_rejects_garbage(tmp_path):
    torch.manual_seed(0)
    m = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=64))
    compiled = torch.compile(m)  # its state_dict keys start with _orig_mod. (nanoGPT #325); nothing is compiled
    path = tmp_path / "ckpt.pt"
    torch.save({"model": compiled.state_dict(), "model_args": vars(m.config)}, path)
    assert next(iter(torch.load(path, weights_only=True)["model"])).startswith("_orig_mod.")
    loaded = model_from_checkpoint(load_checkpoint(path), path)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), m.state_dict().values(), strict=True))
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(UsageError, match="is not a readable checkpoint"):
        load_checkpoint(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(UsageError, match="is not a train.py checkpoint"):
        load_checkpoint(path)
    with pytest.raises(UsageError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
