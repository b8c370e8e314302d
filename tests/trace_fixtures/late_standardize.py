"""A late forward NaN: per-sample standardization divides by the sample's std, which is 0 for the constant
sample that arrives at step 150 (no DataLoader: the batch is the model's input)."""
import torch

torch.manual_seed(0)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh())
        self.head = torch.nn.Linear(16, 1)

    def forward(self, x):
        x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # std 0 for a constant sample
        return self.head(self.body(x))


model = Net()
criterion = torch.nn.MSELoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for step in range(1, 301):
    x, y = torch.randn(4, 8), torch.randn(4, 1)
    if step == 150:
        x[2] = 0.5  # a constant sample
    loss = criterion(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("done")
