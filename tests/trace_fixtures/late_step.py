"""A NaN (an inf) born in the optimizer step: at step 64 an outlier sample makes a finite but huge gradient,
and SGD's update lr * grad overflows float32 (the loss and the gradients are finite)."""
import torch

torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=10.0)
for step in range(1, 121):
    x, y = torch.rand(8, 4) * 1e-3, torch.zeros(8, 1)
    if step == 64:
        x[0, 0] = 3e38  # an outlier: finite
    loss = (model(x) - y).abs().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
