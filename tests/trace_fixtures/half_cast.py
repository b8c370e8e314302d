"""A float16 run where the first inf is born in a cast: a feature of 1e5 does not fit float16 (65504).
--cast half: x.half(); --cast to: x.to(torch.float16); --cast model: model.half() of a weight of 1e5;
--cast autocast: the model stays float32 and `nanlint trace --dtype float16` casts its input."""
import sys

import torch
import torch.nn as nn

CAST = sys.argv[sys.argv.index("--cast") + 1] if "--cast" in sys.argv else "half"

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
x = torch.randn(16, 4)
x[0, 0] = 1e5  # an unnormalized feature
y = torch.randint(0, 2, (16,))
if CAST == "model":
    with torch.no_grad():
        model[0].weight[0, 0] = 1e5
    model = model.half()
elif CAST != "autocast":
    model = model.half()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(3):
    if CAST == "half":
        batch = x.half()
    elif CAST == "to":
        batch = x.to(torch.float16)
    elif CAST == "model":
        batch = (x / 1e5).half()
    else:
        batch = x
    loss = nn.functional.cross_entropy(model(batch).float(), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
