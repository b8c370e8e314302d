"""Starts from a clean output folder and a fresh log, as many training scripts do."""
import os
import shutil

import torch

if os.path.exists("out"):
    shutil.rmtree("out")
os.makedirs("out")
assert os.listdir("out") == []
if os.path.exists("train.log"):
    os.remove("train.log")
assert not os.path.exists("train.log")
with open("train.log", "a") as log:
    log.write("fresh\n")
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
model(torch.ones(1, 2)).sum().backward()
optimizer.step()
