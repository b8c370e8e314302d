"""Evaluates over a validation DataLoader before the optimizer exists, then trains: the trace must reach the step."""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
model = nn.Linear(4, 2)
ds = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
val = DataLoader(ds, batch_size=8)
train = DataLoader(ds, batch_size=8, shuffle=True)

@torch.no_grad()
def evaluate():
    model.eval()
    acc = sum((model(x).argmax(1) == y).float().mean().item() for x, y in val) / len(val)
    model.train()
    return acc

print("initial acc", evaluate())
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in train:
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
