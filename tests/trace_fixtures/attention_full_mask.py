"""A batch with an empty (all-padding) sequence: nn.MultiheadAttention's softmax over a fully masked row is NaN."""
import torch
from torch import nn

torch.manual_seed(0)
attn = nn.MultiheadAttention(8, 2, batch_first=True)
optimizer = torch.optim.Adam(attn.parameters())
x = torch.randn(3, 5, 8)
padding = torch.zeros(3, 5, dtype=torch.bool)
padding[1] = True  # the second sequence is empty
out, _ = attn(x, x, x, key_padding_mask=padding)
loss = out.pow(2).mean()
loss.backward()
optimizer.step()
