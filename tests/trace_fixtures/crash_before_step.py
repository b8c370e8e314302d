"""Crashes before the first step."""
import torch

model = torch.nn.Linear(2, 1)
weights = model(torch.ones(1, 2))
raise ValueError("config file missing")
