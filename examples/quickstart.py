"""A first look at rnnkit's layers: run ``python examples/quickstart.py``."""

import torch
from torch import nn

import rnnkit

torch.manual_seed(0)

# 1. A drop-in for torch.nn.LSTM that takes the lengths of a padded batch directly.
x = torch.randn(3, 7, 8)  # (B, T, I): three sequences, padded to 7 steps
lengths = torch.tensor([7, 4, 2])
lstm = rnnkit.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True)
out, (h_n, c_n) = lstm(x, lengths=lengths)
print(f"LSTM output {tuple(out.shape)}, h_n {tuple(h_n.shape)}, engine {lstm.active_engine!r}")

# 2. Every step's cell state, which torch.nn cannot return.
_, _, states = lstm(x, lengths=lengths, return_states=True)
print(f"every c_t: {tuple(states.c.shape)} = (layers*directions, B, T, H)")

# 3. The last valid step of each sequence, not out[:, -1].
features = rnnkit.last_step(out, lengths, batch_first=True, bidirectional=True)
print(f"last valid step features {tuple(features.shape)}")


# 4. Your own cell, stacked and bidirectional, with no change to rnnkit.
class MinimalRNNCell(nn.Module):
    """h_t = tanh(W x_t + U h_{t-1})"""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.output_size = input_size, hidden_size
        self.w, self.u = nn.Linear(input_size, hidden_size), nn.Linear(hidden_size, hidden_size)

    def init_state(self, batch_size, *, device=None, dtype=None):
        return torch.zeros(batch_size, self.output_size, device=device, dtype=dtype)

    def forward(self, x, h):
        h = torch.tanh(self.w(x) + self.u(h))
        return h, h


layer = rnnkit.Recurrent(
    lambda n: MinimalRNNCell(n, 16),
    input_size=8,
    num_layers=2,
    bidirectional=True,
    batch_first=True,
)
out, h_n = layer(x, lengths=lengths)
print(f"custom cell through Recurrent: output {tuple(out.shape)}, h_n {tuple(h_n.shape)}")
