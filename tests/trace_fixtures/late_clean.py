"""A clean long run: 300 steps of a tiny regression, never non-finite."""
import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
w = torch.randn(8, 1)
for step in range(300):
    x = torch.randn(16, 8)
    loss = torch.nn.functional.mse_loss(model(x), x @ w)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("final loss", loss.item())
