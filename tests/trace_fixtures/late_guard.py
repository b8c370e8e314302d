"""The script's own NaN guard: it raises before optimizer.step() when the loss is NaN (step 30: log of a
probability that underflowed to 0)."""
import torch

torch.manual_seed(0)
model = torch.nn.Linear(3, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(1, 61):
    x = torch.randn(5, 3) * (1e6 if step == 30 else 1.0)
    p = torch.softmax(model(x), dim=1)
    loss = -torch.log(p[:, 0]).mean()
    if torch.isnan(loss) or torch.isinf(loss):
        raise RuntimeError(f"loss is {loss.item()} at step {step}")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
