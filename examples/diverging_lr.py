"""Hazard: a learning rate that rewrites the weights in one step. The first update is larger than the weights
themselves (update-to-weight ratio >> 1e-3), the loss explodes, and within a few steps it overflows to inf.
Trace it with `--steps 1` to see the ratio, with `--steps 4` to see the overflow.
Fix: a learning rate around 1e-3 here, a warm-up, or gradient clipping."""
import torch

torch.manual_seed(0)
model = torch.nn.Linear(16, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=1e7)
x = torch.randn(128, 16)
target = x.sum(dim=1, keepdim=True)

for step in range(6):
    prediction = model(x)
    loss = ((prediction - target) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4g}")
