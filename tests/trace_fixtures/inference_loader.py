"""Inference over a DataLoader with worker processes: no optimizer, no backward."""
import torch
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
model = torch.nn.Linear(4, 2).eval()
loader = DataLoader(TensorDataset(torch.randn(40, 4)), batch_size=8, num_workers=2)
seen = 0
with torch.no_grad():
    for (batch,) in loader:
        out = model(batch)
        seen += 1
print("batches", seen)
