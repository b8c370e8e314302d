"""A HuggingFace-style model (output dataclass, labels in forward), a @torch.no_grad() evaluation with
eval()/train() switches before training, and gradient accumulation over 2 micro-batches per step."""
import torch
from torch import nn
from dataclasses import dataclass


@dataclass
class Output:
    loss: torch.Tensor | None
    logits: torch.Tensor


class TinyLM(nn.Module):
    def __init__(self, vocab=32, d=16):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.ln = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab)

    def forward(self, input_ids, labels=None):
        h = self.ln(self.embed(input_ids))
        logits = self.lm_head(h)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1))
        return Output(loss, logits)


@torch.no_grad()
def evaluate(model, batches):
    model.eval()
    total = 0.0
    for ids in batches:
        total += model(ids, labels=ids).loss.item()
    model.train()
    return total / len(batches)


torch.manual_seed(0)
model = TinyLM()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
data = [torch.randint(0, 32, (4, 8)) for _ in range(8)]
initial_loss = evaluate(model, data[:2])
accum = 2
for i, ids in enumerate(data):
    out = model(ids, labels=ids)
    (out.loss / accum).backward()
    if (i + 1) % accum == 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
