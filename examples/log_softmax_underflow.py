"""Hazard: log of a softmax. With confident (large) logits the softmax of a wrong class underflows to exactly
0.0 in float32, log(0) = -inf, and the loss and every gradient become inf/NaN.
Fix: F.log_softmax(logits, dim=-1) (or F.cross_entropy on the logits)."""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = torch.nn.Linear(8, 4)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 8) * 300.0  # unnormalized features: logits in the hundreds
y = torch.randint(0, 4, (32,))

for step in range(3):
    logits = model(x)
    probs = F.softmax(logits, dim=-1)
    loss = F.nll_loss(torch.log(probs), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
