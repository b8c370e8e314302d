"""The batch arrives with a NaN already in it (loaded from NumPy, not computed under the monitor)."""
import numpy as np
import torch

array = np.ones((4, 3), dtype=np.float32)
array[2, 1] = np.nan
batch = torch.from_numpy(array)
model = torch.nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss = model(batch).sum()
loss.backward()
optimizer.step()
