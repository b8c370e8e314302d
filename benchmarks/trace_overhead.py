"""Cost of watching one training step: plain, under torch.autograd.detect_anomaly, and under the nanlint trace
monitor (both modes, module/optimizer hooks, per-op aminmax; the static pass and the script start-up are not
included: they are paid once per run).

detect_anomaly only records forward tracebacks and checks backward outputs for NaN; the monitor also covers
the forward pass, the optimizer step and inf.

    python benchmarks/trace_overhead.py [--repeats 7] [--threads N]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from nanlint.trace.watch import watching  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def mlp_case():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 1024),
                                torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(256, 512), torch.randint(0, 10, (256,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return "MLP 512-1024-1024-10, batch 256, Adam", step


def mlp4_case():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(512, 256), torch.randint(0, 10, (512,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return "MLP 4 layers 256-512-512-512-10, batch 512, AdamW", step


def transformer_case():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=512, batch_first=True, dropout=0.1)
    model = torch.nn.Sequential(torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False),
                                torch.nn.Linear(128, 1000))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(16, 64, 128), torch.randint(0, 1000, (16 * 64,))

    def step():
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 1000), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return "Transformer encoder 2 layers d=128 h=4 ff=512 dropout 0.1 + 1000-way head, batch 16 x 64 tokens, AdamW", step


def lstm_lbfgs_case():
    """Many tiny ops: pytorch/examples time_sequence_prediction (two LSTMCells and a Linear unrolled over a sine
    wave, float64, LBFGS with a closure), shortened to 60 time steps and 2 LBFGS iterations."""
    torch.manual_seed(0)

    class Sequence(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm1 = torch.nn.LSTMCell(1, 51)
            self.lstm2 = torch.nn.LSTMCell(51, 51)
            self.linear = torch.nn.Linear(51, 1)

        def forward(self, input):
            outputs = []
            h_t = torch.zeros(input.size(0), 51, dtype=torch.double)
            c_t = torch.zeros(input.size(0), 51, dtype=torch.double)
            h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
            c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
            for input_t in input.split(1, dim=1):
                h_t, c_t = self.lstm1(input_t, (h_t, c_t))
                h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
                outputs += [self.linear(h_t2)]
            return torch.cat(outputs, dim=1)

    steps = 60
    x = torch.arange(steps + 1, dtype=torch.double) + torch.randint(-80, 80, (97, 1)).double()
    data = torch.sin(x / 20.0)
    input, target = data[:, :-1], data[:, 1:]
    model = Sequence().double()
    optimizer = torch.optim.LBFGS(model.parameters(), lr=0.8, max_iter=2)

    def step():
        def closure():
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(input), target)
            loss.backward()
            return loss
        optimizer.step(closure)
    return f"LSTMCell x2 + Linear unrolled over {steps} steps, batch 97, float64, LBFGS (2 iterations)", step


def measure(step, repeats: int, variants: dict) -> dict:
    """Best time per variant; the variants take turns in every round so that a busy machine disturbs them alike."""
    best = {name: float("inf") for name in variants}
    for round_ in range(repeats + 1):
        for name, wrap in variants.items():
            with wrap():
                start = time.perf_counter()
                step()
                elapsed = time.perf_counter() - start
            if round_:  # round 0 warms caches up
                best[name] = min(best[name], elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*Anomaly Detection.*")
    from contextlib import nullcontext

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats} steps")
    for name, step in (mlp_case(), mlp4_case(), transformer_case(), lstm_lbfgs_case()):
        best = measure(step, args.repeats, {"plain": nullcontext, "anomaly": torch.autograd.detect_anomaly,
                                            "traced": lambda: watching(HERE)})
        plain, anomaly, traced = best["plain"], best["anomaly"], best["traced"]
        print(f"\n{name}")
        print(f"  plain            {plain * 1e3:8.1f} ms")
        print(f"  detect_anomaly   {anomaly * 1e3:8.1f} ms  ({anomaly / plain:.2f}x plain)")
        print(f"  nanlint monitor  {traced * 1e3:8.1f} ms  ({traced / plain:.2f}x plain, {traced / anomaly:.2f}x detect_anomaly)")


if __name__ == "__main__":
    main()
