"""A late backward NaN: a Siamese distance sqrt(sum((a - b)^2)) is 0 for an identical pair (step 40); the
forward value is finite, the gradient of sqrt at 0 is inf, and inf * 0 is NaN."""
import torch

torch.manual_seed(0)
encoder = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 4))
optimizer = torch.optim.SGD(encoder.parameters(), lr=0.01)
for step in range(1, 101):
    a, b = torch.randn(8, 6), torch.randn(8, 6)
    if step == 40:
        b[5] = a[5]  # an identical pair
    ea, eb = encoder(a), encoder(b)
    distance = (ea - eb).pow(2).sum(1).sqrt()
    loss = torch.relu(1.0 - distance).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
