"""Hazard: a hand-written softmax. exp of a logit above 88.7 overflows float32 to inf, and inf / inf = NaN.
Fix: torch.softmax (it subtracts the max), or logits - logits.amax(dim=-1, keepdim=True) before exp."""
import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(64, 10) * 800.0
y = torch.randint(0, 5, (64,))

for step in range(3):
    logits = model(x)
    weights = torch.exp(logits)
    probs = weights / weights.sum(dim=-1, keepdim=True)
    loss = -probs.gather(1, y[:, None]).clamp_min(1e-6).log().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
