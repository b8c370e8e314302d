"""NAN6xx: unscaled inputs and large initializations, with exact codes and lines."""
from __future__ import annotations

import pytest

from rule_cases import findings, hits


FLAGGED = [
    ("NAN601", """
        import torchvision
        def f(model, path):
            img = torchvision.io.decode_image(path)
            return model(img[None].to(torch.float32))
        """, [4]),
    ("NAN601", """
        import numpy as np
        import torch
        from PIL import Image
        def f(model, path):
            arr = np.array(Image.open(path))
            x = torch.tensor(arr, dtype=torch.float32)
            return model(x)
        """, [6]),
    ("NAN601", """
        from torchvision.transforms import PILToTensor
        def f(model, img):
            x = PILToTensor()(img)
            return model(x.unsqueeze(0).float())
        """, [4]),
    ("NAN602", """
        import torchvision.transforms as T
        tf = T.Compose([T.Resize(32), T.PILToTensor()])
        """, [2]),
    ("NAN602", """
        import torch
        from torchvision.transforms import v2
        tf = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=False)])
        """, [3]),
    ("NAN603", """
        import numpy as np
        import torch
        data = np.loadtxt("x.csv", delimiter=",")
        X = torch.from_numpy(data[:, :-1])
        """, [4]),
    ("NAN604", """
        from torch import nn
        layer = nn.Linear(10, 10)
        nn.init.normal_(layer.weight)
        act = nn.Sigmoid()
        """, [3]),
    ("NAN604", """
        import torch
        def init(w):
            torch.nn.init.trunc_normal_(w, std=2.0)
        def forward(x):
            return torch.tanh(x)
        """, [3]),
]

SILENT = [
    ("NAN604", """
        from torch import nn
        from transformers.activations import gelu_pytorch_tanh
        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.proj = nn.Linear(8, 8)
                nn.init.normal_(self.proj.weight)
                self.act = gelu_pytorch_tanh
        """),
    ("NAN601", """
        import torchvision
        def f(model, path):
            img = torchvision.io.read_image(path)
            return model(img.float().div(255))
        """),
    ("NAN601", """
        import torchvision
        def f(model, path):
            img = torchvision.io.read_image(path)
            return model(normalize(img.float()))
        """),
    ("NAN601", """
        import cv2
        def read_depth(path):
            depth = cv2.imread(path)
            return depth.astype("float32")
        """),
    ("NAN601", """
        def f(model, x):
            return model(x.float())
        """),
    ("NAN602", """
        import torchvision.transforms as T
        tf = T.Compose([T.Resize(32), T.ToTensor(), T.Normalize((0.5,), (0.5,))])
        """),
    ("NAN602", """
        import torchvision.transforms as T
        tf = T.Compose([T.PILToTensor(), T.Lambda(lambda x: x / 255)])
        """),
    ("NAN602", """
        import torchvision.transforms as T
        tf = T.Compose([T.Resize(32), T.CenterCrop(28)])
        """),
    ("NAN603", """
        import numpy as np
        import torch
        data = np.loadtxt("x.csv", delimiter=",")
        data = (data - data.mean(0)) / data.std(0)
        X = torch.from_numpy(data)
        """),
    ("NAN604", """
        from torch import nn
        layer = nn.Linear(10, 10)
        nn.init.normal_(layer.weight, std=0.02)
        act = nn.Sigmoid()
        """),
    ("NAN604", """
        from torch import nn
        layer = nn.Linear(10, 10)
        nn.init.normal_(layer.weight)
        act = nn.ReLU()
        """),
    ("NAN604", """
        import torch
        from torch import nn
        emb = nn.Embedding(100, 16)
        nn.init.normal_(emb.weight)
        h = torch.tanh(emb(x))
        """),
    ("NAN604", """
        import torch
        noise = torch.empty(3).normal_()
        y = torch.tanh(noise)
        """),
]


@pytest.mark.parametrize(("code", "source", "lines"), FLAGGED)
def test_flagged(code, source, lines):
    assert hits(code, source) == [(code, line) for line in lines]


@pytest.mark.parametrize(("code", "source"), SILENT)
def test_silent(code, source):
    assert hits(code, source) == []


def test_init_std_threshold_is_an_option():
    source = "from torch import nn\nnn.init.normal_(w, std=0.5)\nact = nn.Tanh()\n"
    assert hits("NAN604", source) == []
    assert hits("NAN604", source, rule_options={"NAN604": {"max_std": 0.5}}) == [("NAN604", 2)]
