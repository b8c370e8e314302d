"""A LightningModule as users write it: Trainer.fit runs training_step inside its optimizer closure."""
import sys

import lightning as L
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

MANUAL = "--manual" in sys.argv
SHARPEN = 1000.0 if "--sharpen" in sys.argv else 1.0


class Classifier(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = not MANUAL
        self.encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    def training_step(self, batch, batch_idx):
        x, y = batch
        scores = self.encoder(x) * SHARPEN
        logp = torch.log(torch.softmax(scores, dim=-1))
        loss = F.nll_loss(logp, y)
        if MANUAL:
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


if __name__ == "__main__":
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 8), torch.randint(0, 4, (64,)))
    trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Classifier(), DataLoader(data, batch_size=16))
    print("finished")
