"""One small training loop in every dtype, layout and optimizer shape users run (the trace test matrix)."""
import argparse

import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--dtype", default="float32",
                    choices=["float32", "float64", "default-float64", "float16", "bfloat16", "complex64"])
parser.add_argument("--optimizer", default="SGD", choices=["SGD", "Adam", "AdamW", "LBFGS", "SparseAdam", "two"])
parser.add_argument("--scheduler", action="store_true")
parser.add_argument("--scaler", default="none", choices=["none", "disabled", "enabled"])
parser.add_argument("--autocast", action="store_true")
parser.add_argument("--frozen", action="store_true", help="freeze the first layer")
parser.add_argument("--nan", action="store_true", help="divide the loss by a zero count")
args = parser.parse_args()
torch.manual_seed(0)

if args.dtype == "default-float64":
    torch.set_default_dtype(torch.float64)
dtype = {"default-float64": torch.get_default_dtype()}.get(args.dtype) or getattr(torch, args.dtype)


class Complex(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, dtype=torch.cfloat))

    def forward(self, x):
        return (x.to(torch.cfloat) * self.w).abs().sum(dim=1, keepdim=True)


if args.optimizer == "SparseAdam":
    model = nn.Embedding(20, 6, sparse=True)
elif args.dtype == "complex64":
    model = Complex()
else:
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)
    if args.frozen:
        model[0].requires_grad_(False)
critic = nn.Linear(6, 1).to(dtype if dtype.is_floating_point else torch.float32)
params = [p for p in model.parameters() if p.requires_grad]
optimizers = {
    "SGD": lambda: [torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.01}], lr=0.05,
                                    momentum=0.9)],
    "Adam": lambda: [torch.optim.Adam(params, lr=1e-3)],
    "AdamW": lambda: [torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)],
    "LBFGS": lambda: [torch.optim.LBFGS(params, lr=0.5, max_iter=4)],
    "SparseAdam": lambda: [torch.optim.SparseAdam(params, lr=1e-3)],
    "two": lambda: [torch.optim.Adam(params, lr=1e-3), torch.optim.Adam(critic.parameters(), lr=1e-3)],
}[args.optimizer]()
schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=1) for o in optimizers] if args.scheduler else []
scaler = None if args.scaler == "none" else torch.amp.GradScaler("cpu", enabled=args.scaler == "enabled")


def batch():
    if args.optimizer == "SparseAdam":
        return torch.randint(0, 20, (16,))
    return torch.randn(16, 6, dtype=dtype if dtype.is_floating_point else torch.float32)


def compute_loss(x):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast):
        out = model(x)
    loss = out.float().pow(2).mean() if out.dtype in (torch.float16, torch.bfloat16) else out.pow(2).mean()
    if args.nan:
        empty = (x > 1e9).sum()
        loss = loss * 0 / empty  # NAN HERE
    return loss


for step in range(4):
    x = batch()
    first = optimizers[0]
    if args.optimizer == "LBFGS":
        def closure():
            first.zero_grad()
            loss = compute_loss(x)
            loss.backward()
            return loss
        first.step(closure)
    else:
        loss = compute_loss(x)
        first.zero_grad()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(first)
            scaler.update()
        else:
            loss.backward()
            first.step()
    if len(optimizers) > 1:  # a second model trained after the first, as in a GAN
        critic_loss = critic(x.detach()).pow(2).mean()
        optimizers[1].zero_grad()
        critic_loss.backward()
        optimizers[1].step()
    for scheduler in schedulers:
        scheduler.step()
print("trained", step + 1, "steps")
