"""A model cast to float16 and trained with Adam's default eps: rows of the embedding that the batch does not
use have a zero gradient, and eps=1e-8 rounds to 0 in float16, so their update is 0/0."""
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Embedding(10, 8), nn.Flatten(), nn.Linear(16, 2)).half()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
ids = torch.tensor([[1, 2], [3, 1]])
loss = nn.functional.cross_entropy(model(ids).float(), torch.tensor([0, 1]))
loss.backward()
optimizer.step()
