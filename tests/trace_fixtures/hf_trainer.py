"""A Hugging Face Trainer run on a tiny model built in code (nothing is downloaded)."""
import sys

import torch
import torch.nn as nn
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

SHARPEN = 1000.0 if "--sharpen" in sys.argv else 1.0


class TinyClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(8, 4)

    def forward(self, features, labels=None):
        scores = self.encoder(features) * SHARPEN
        logp = torch.log(torch.softmax(scores, dim=-1))
        loss = nn.functional.nll_loss(logp, labels)
        return {"loss": loss, "logits": scores}


class Synthetic(Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"features": torch.randn(8, generator=g), "labels": torch.tensor(i % 4)}


if __name__ == "__main__":
    args = TrainingArguments(output_dir="hf_out", per_device_train_batch_size=16, num_train_epochs=2,
                             report_to=[], save_strategy="no", use_cpu=True, logging_steps=1, disable_tqdm=True)
    Trainer(model=TinyClassifier(), args=args, train_dataset=Synthetic()).train()
    print("finished")
