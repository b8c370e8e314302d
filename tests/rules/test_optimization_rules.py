"""NAN5xx: learning rates, float16 without a scaler, RNNs without clipping, with exact codes and lines."""
from __future__ import annotations

import pytest

from rule_cases import findings, hits


FLAGGED = [
    ("NAN501", """
        from torch.optim import AdamW
        opt = AdamW(params, lr=0.05)
        """, [2]),
    ("NAN501", """
        import torch
        opt = torch.optim.SGD(params, 5.0, momentum=0.9)
        """, [2]),
    ("NAN501", """
        import torch.optim as optim
        def train(model, lr=0.1):
            return optim.Adam(model.parameters(), lr=lr)
        """, [2]),
    ("NAN501", """
        import torch
        CONFIG = {"optimizer": "adam", "lr": 0.3}
        opt = torch.optim.Adam(params)
        """, [2]),
    ("NAN501", """
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--learning-rate", "-l", type=float, default=3.0)
        """, [3]),
    ("NAN501", """
        import torch
        class Trainer:
            def __init__(self):
                self.lr = 0.5
                self.opt = torch.optim.RMSprop(self.params)
        """, [4]),
    ("NAN502", """
        import torch
        def train(model, x, opt):
            with torch.cuda.amp.autocast():
                loss = model(x)
            loss.backward()
            opt.step()
        """, [3]),
    ("NAN502", """
        import torch
        model = Net().cuda().half()
        def train(x, opt):
            loss = model(x)
            loss.backward()
            opt.step()
        """, [2]),
    ("NAN502", """
        import torch
        def train(model, x, opt):
            with torch.autocast(device_type="cuda", dtype=torch.float16):
                loss = model(x)
            loss.backward()
        """, [3]),
    ("NAN503", """
        from torch import nn
        model = nn.GRU(8, 8)
        def step(x, opt):
            model(x)[0].sum().backward()
            opt.step()
        """, [2]),
]

SILENT = [
    ("NAN501", """
        import torch
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
        """),
    ("NAN501", """
        import torch
        opt = torch.optim.Adam(params, lr=3e-4)
        """),
    ("NAN501", """
        import torch
        def train(model, lr=0.1):
            return torch.optim.SGD(model.parameters(), lr=lr)
        """),
    ("NAN501", """
        import torch
        class Lion(torch.optim.Optimizer):
            def __init__(self, params, lr=0.3):
                super().__init__(params, dict(lr=lr))
        """),
    ("NAN501", """
        def schedule(step):
            lr = 5.0
            return lr / step
        """),
    ("NAN502", """
        import torch
        def train(model, x, opt):
            scaler = torch.cuda.amp.GradScaler()
            with torch.cuda.amp.autocast():
                loss = model(x)
            scaler.scale(loss).backward()
        """),
    ("NAN502", """
        import torch
        def evaluate(model, x):
            with torch.autocast("cuda"):
                return model(x)
        """),
    ("NAN502", """
        import torch
        def train(model, x, opt):
            with torch.autocast("cpu"):
                loss = model(x)
            loss.backward()
        """),
    ("NAN503", """
        from torch import nn
        model = nn.LSTM(8, 8)
        def step(x, opt):
            model(x)[0].sum().backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        """),
    ("NAN503", """
        from torch import nn
        model = nn.LSTM(8, 8)
        """),
]


@pytest.mark.parametrize(("code", "source", "lines"), FLAGGED)
def test_flagged(code, source, lines):
    assert hits(code, source) == [(code, line) for line in lines]


@pytest.mark.parametrize(("code", "source"), SILENT)
def test_silent(code, source):
    assert hits(code, source) == []


def test_learning_rate_thresholds_are_options():
    source = "import torch\nopt = torch.optim.Adam(params, lr=0.005)\n"
    assert hits("NAN501", source) == []
    strict = {"NAN501": {"adam": 0.001}}
    assert hits("NAN501", source, rule_options=strict) == [("NAN501", 2)]


def test_learning_rate_confidence_drops_with_gradient_clipping():
    source = "import torch\nopt = torch.optim.Adam(params, lr=0.5)\ntorch.nn.utils.clip_grad_norm_(params, 1.0)\n"
    assert [f.confidence.value for f in findings("NAN501", source)] == ["low"]


def test_file_level_rules_report_once():
    source = """
        import torch
        def train(model, x, opt):
            with torch.autocast("cuda"):
                a = model(x)
            with torch.autocast("cuda"):
                b = model(x)
            (a + b).backward()
        """
    assert hits("NAN502", source) == [("NAN502", 3)]
