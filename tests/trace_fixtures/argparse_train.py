"""A typical training script: argparse, a Dataset with worker processes, logging to files, an output folder,
checkpoints and metrics written over files that already exist (run from a folder the test prepares)."""
import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

log = logging.getLogger("argparse-train")


class Toy(Dataset):
    def __init__(self, n=32):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = (self.x.sum(1) > 0).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--out-dir", default="runs/exp1")
    args = parser.parse_args()
    torch.manual_seed(0)
    logging.basicConfig(filename="train.log", level=logging.INFO, force=True)
    log.addHandler(logging.FileHandler("debug.log"))
    os.makedirs(args.out_dir, exist_ok=True)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    torch.save(model.state_dict(), "ckpt.pt")
    torch.save(model.state_dict(), os.path.join(args.out_dir, "init.pt"))
    with open("metrics.json", "w") as f:
        json.dump({"start": True}, f)
    assert json.load(open("metrics.json")) == {"start": True}
    Path("summary.txt").write_text("starting\n")
    Path(args.out_dir, "notes.txt").write_text("notes\n")
    Path(args.out_dir, "done").touch()
    shutil.copy("ckpt.pt", "best.pt")
    with tempfile.NamedTemporaryFile(dir=args.out_dir, suffix=".tmp", delete=False) as tmp:  # atomic save
        torch.save(model.state_dict(), tmp)
    os.replace(tmp.name, "last.pt")
    assert set(torch.load("last.pt")) == set(model.state_dict())
    log.info("ready")
    loader = DataLoader(Toy(), batch_size=8, shuffle=True, num_workers=2)
    for epoch in range(3):
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            log.info("epoch %d loss %.4f", epoch, loss.item())


if __name__ == "__main__":
    main()
