"""Intentional -inf attention-mask fill (not a bug), integer tensors, and torch.compile (made the identity)."""
import torch

torch.manual_seed(0)
model = torch.compile(torch.nn.Linear(4, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(2, 5, 4)
causal = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)
positions = torch.arange(5) * 2  # integer tensor: never reported
scores = model(x) @ x.transpose(-2, -1)
scores = scores.masked_fill(causal, float("-inf"))
attention = scores.softmax(dim=-1)
loss = attention.sum() + positions.sum()
loss.backward()
optimizer.step()
