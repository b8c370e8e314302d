"""A training loop as the Accelerate docs write it: prepare() wraps the model, optimizer and loader, and
accelerator.backward(loss) replaces loss.backward(); --accumulate steps the optimizer every 2 batches."""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader, TensorDataset

SHARPEN = 1000.0 if "--sharpen" in sys.argv else 1.0
ACCUMULATE = 2 if "--accumulate" in sys.argv else 1


def main():
    torch.manual_seed(0)
    accelerator = Accelerator(cpu=True, gradient_accumulation_steps=ACCUMULATE)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = TensorDataset(torch.randn(64, 8), torch.randint(0, 4, (64,)))
    model, optimizer, loader = accelerator.prepare(model, optimizer, DataLoader(data, batch_size=8))
    for epoch in range(3):
        for x, y in loader:
            with accelerator.accumulate(model):
                scores = model(x) * SHARPEN
                logp = torch.log(torch.softmax(scores, dim=-1))
                loss = F.nll_loss(logp, y)
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad()
        print(f"epoch {epoch} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
