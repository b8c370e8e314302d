"""Swallows everything, twice nested: a bare `except:` around the step and `except BaseException:` around it."""
import torch

torch.manual_seed(0)
model = torch.nn.Linear(4, 1)
optimizer = torch.optim.Adam(model.parameters(), 1e-3)


def train_step():
    try:
        loss = model(torch.randn(8, 4)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    except:  # noqa: E722
        print("swallowed")


while True:
    try:
        train_step()
    except BaseException:
        pass
