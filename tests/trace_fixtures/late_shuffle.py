"""A DataLoader that shuffles: one constant sample (index 37) somewhere in the first epoch meets the
per-sample standardization. Each batch prints its indices, so a test can see which batch the replay ran."""
import torch
from torch.utils.data import DataLoader, Dataset

CONSTANT = 37


class Samples(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(64, 8, generator=g)
        self.x[CONSTANT] = 2.0

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return self.x[i], torch.tensor(i)


model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loader = DataLoader(Samples(), batch_size=4, shuffle=True)
for epoch in range(3):
    for x, index in loader:
        print("batch", index.tolist())
        x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
