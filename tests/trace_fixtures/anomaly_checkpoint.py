"""detect_anomaly and activation checkpointing, as debugging users combine them: sqrt's gradient at 0."""
import torch
from torch.utils.checkpoint import checkpoint

torch.autograd.set_detect_anomaly(True)
torch.manual_seed(0)
linear = torch.nn.Linear(4, 4)
optimizer = torch.optim.SGD(linear.parameters(), lr=0.1)


def block(x):
    h = linear(x)
    return torch.sqrt((h - h).pow(2).sum(-1))


y = checkpoint(block, torch.randn(2, 4), use_reentrant=False)
y.sum().backward()
optimizer.step()
