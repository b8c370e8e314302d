"""Hazard: sqrt at zero inside a hand-written norm. The forward pass is finite (sqrt(0) = 0), but the
gradient of sqrt at 0 is 1 / (2 * 0) = inf, and the chain rule turns it into NaN in every weight.
Fix: torch.sqrt(d2 + eps), d2.clamp_min(eps).sqrt(), or torch.linalg.vector_norm (which has a safe subgradient)."""
import torch

torch.manual_seed(0)
encoder = torch.nn.Linear(6, 3)
optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
anchors = torch.randn(16, 6)
positives = anchors.clone()
positives[8:] += 0.1 * torch.randn(8, 6)  # the first 8 pairs are identical: distance exactly 0

for step in range(3):
    a, p = encoder(anchors), encoder(positives)
    distance = torch.sqrt(((a - p) ** 2).sum(dim=-1))
    loss = distance.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
