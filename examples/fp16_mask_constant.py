"""Hazard: a -1e9 attention-mask constant. It is fine in float32, but float16 stops at 65504: under autocast
(or .half()) the fill overflows; PyTorch refuses the value or, in additive masks, it becomes -inf.
Trace with `--dtype float16` to see it fail. Fix: scores.masked_fill(mask, torch.finfo(scores.dtype).min)."""
import torch


class TinyAttention(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, dim)

    def forward(self, x, pad):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
        scores = scores.masked_fill(pad[:, None, :], -1e9)
        return self.out(scores.softmax(dim=-1) @ v)


torch.manual_seed(0)
model = TinyAttention(8)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(4, 6, 8)
pad = torch.zeros(4, 6, dtype=torch.bool)
pad[:, 4:] = True  # the last two tokens are padding

for step in range(3):
    loss = model(x, pad).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
