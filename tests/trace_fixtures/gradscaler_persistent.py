"""GradScaler calibration that never ends: the gradients overflow float16 even unscaled (scale <= 1), while a
very large init_scale alone (2**30: 15 skipped steps) is calibration."""
import sys

import torch

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 30)
x = torch.randn(32, 8)
y = torch.randn(32, 1)
factor = float(sys.argv[1])  # 1e5: the gradients themselves overflow

for step in range(60):
    with torch.autocast("cpu", dtype=torch.float16):
        loss = ((model(x).float() - y) * factor).pow(2).mean()
    optimizer.zero_grad()
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
