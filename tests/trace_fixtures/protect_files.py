"""Writes, moves and deletes files the way training scripts do (checkpoints, logs, cleanup)."""
import logging
import os
import shutil
from pathlib import Path

import torch

model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
torch.save(model.state_dict(), "ckpt.pt")
with open("log.txt", "w") as f:
    f.write("overwritten\n")
with open("log.txt") as f:
    assert f.read() == "overwritten\n"  # the script reads back what it wrote
Path("notes.txt").write_text("new notes\n")
os.remove("keep.txt")
os.rename("old.txt", "renamed.txt")
shutil.rmtree("data")
logger = logging.getLogger("protect-fixture")
handler = logging.FileHandler("train.log")
logger.addHandler(handler)
logger.warning("hello")
handler.close()
logger.removeHandler(handler)
loss = model(torch.ones(4, 2)).sum()
loss.backward()
optimizer.step()
