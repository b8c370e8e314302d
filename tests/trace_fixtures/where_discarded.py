"""A per-class mean guarded by torch.where: the class that never appears gives 0/0, which where discards."""
import torch
torch.manual_seed(0)
model = torch.nn.Linear(4, 3)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(6, 4)
labels = torch.tensor([0, 0, 1, 1, 0, 1])
scores = model(x)
counts = torch.stack([(labels == c).sum() for c in range(3)]).float()   # class 2 never appears
totals = torch.stack([scores[labels == c].sum() for c in range(3)])
means = torch.where(counts > 0, totals / counts, torch.zeros_like(totals))
loss = means.pow(2).sum()
loss.backward()
opt.step()
