"""Hazard: a mean over a selection that can be empty. When a batch holds no positive example, the masked loss
is 0 / 0 = NaN, and the NaN reaches every weight at the step.
Fix: divide by mask.sum().clamp_min(1), or skip the term when the count is 0."""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(16, 4)
labels = torch.zeros(16)  # this batch happens to hold no positive example

for step in range(3):
    scores = model(x).squeeze(-1)
    per_example = F.binary_cross_entropy_with_logits(scores, labels, reduction="none")
    positive = labels > 0
    positive_loss = (per_example * positive).sum() / positive.sum()
    negative_loss = per_example[~positive].mean()
    loss = positive_loss + negative_loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
