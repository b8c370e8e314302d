"""nn.DataParallel without GPUs calls the module directly: watched, and the limit is stated."""
import torch

model = torch.nn.DataParallel(torch.nn.Linear(3, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.ones(2, 3)).sum().backward()
optimizer.step()
