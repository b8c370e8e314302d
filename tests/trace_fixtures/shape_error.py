"""A shape mistake in the model, found at the first forward pass (before any step)."""
import torch
from torch import nn


def main():
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(32, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(torch.randn(4, 8)).sum()
    loss.backward()
    optimizer.step()


if __name__ == "__main__":
    main()
