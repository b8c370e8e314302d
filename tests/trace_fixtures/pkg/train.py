"""Run as `python -m pkg.train`: relative import of the model."""
import torch

from .model import Net

torch.manual_seed(0)
net = Net()
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
x = torch.randn(8, 4) * 500.0
loss = -net(x)[:, 0].mean()
loss.backward()
optimizer.step()
