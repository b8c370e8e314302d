"""Lightning, late: the constant sample 45 (batch 12 of 4) meets a per-sample standardization in
training_step, which Lightning runs inside its optimizer closure (and fetches each batch one ahead)."""
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


if __name__ == "__main__":
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    x[45] = 1.5
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Module(), DataLoader(TensorDataset(x, y), batch_size=4))
