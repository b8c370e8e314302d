"""A project whose virtual environment lives in the project folder (pyenv/ here; .venv is git-ignored):
its libraries are not user code."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent / "pyenv" / "lib" / "python3.11" / "site-packages"))
import vendored_lib  # noqa: E402

model = torch.nn.Linear(2, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss = -vendored_lib.log_probs(torch.softmax(model(torch.ones(1, 2)), -1)).sum()
loss.backward()
optimizer.step()
