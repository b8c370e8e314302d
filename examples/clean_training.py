"""No hazard: a small classifier written the safe way (cross_entropy on logits, normalized inputs, a modest
learning rate). `nanlint trace` exits 0 and shows healthy figures."""
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(12, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(64, 12)
y = torch.randint(0, 3, (64,))

for step in range(3):
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"step {step}: loss {loss.item():.4f}")
