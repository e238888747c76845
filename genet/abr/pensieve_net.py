"""The Pensieve / Genet A3C actor in torch (genet-simulators.md §8.1).

Branches over the 6 x S_LEN state: FC(1->128) on row 0, row 1 and row 5 (last
column each), a dense map (S_LEN->128) on rows 2 and 3 (whole history) and
(levels->128) on row 4 (first ``levels`` columns), all ReLU, concatenated to
768 -> FC 128 ReLU -> FC ``n_actions`` -> softmax. This equals tflearn's
``conv_1d(128, 4)`` layout of the reference (which sees a [batch, 1, L] tensor,
i.e. one step with L channels and "same" padding, so only one kernel tap
touches data; §8.1 layout note) and Pensieve-PPO's torch Linear branches.
Genet's row-5 fix is used (Pensieve's original reads row 4 for the last branch).
"""

from __future__ import annotations

import torch
from torch import nn

HIDDEN = 128


class PensieveActor(nn.Module):
    """Actor network: (batch, 6, s_len) float32 state -> (batch, n_actions) probabilities.

    s_len: history length of the state (6 for the Genet paper models, 8 for Pensieve)
    n_actions: 3 (jump actions) or 6 (direct)
    n_levels: bitrate levels read from row 4 (6)
    """

    def __init__(self, s_len: int = 6, n_actions: int = 3, n_levels: int = 6, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.s_len, self.n_actions, self.n_levels = s_len, n_actions, n_levels
        self.fc_bitrate = nn.Linear(1, hidden)
        self.fc_buffer = nn.Linear(1, hidden)
        self.fc_throughput = nn.Linear(s_len, hidden)
        self.fc_delay = nn.Linear(s_len, hidden)
        self.fc_sizes = nn.Linear(n_levels, hidden)
        self.fc_remaining = nn.Linear(1, hidden)
        self.fc_hidden = nn.Linear(6 * hidden, hidden)
        self.fc_out = nn.Linear(hidden, n_actions)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        parts = [relu(self.fc_bitrate(x[:, 0, -1:])), relu(self.fc_buffer(x[:, 1, -1:])),
                 relu(self.fc_throughput(x[:, 2, :])), relu(self.fc_delay(x[:, 3, :])),
                 relu(self.fc_sizes(x[:, 4, : self.n_levels])), relu(self.fc_remaining(x[:, 5, -1:]))]
        return self.fc_out(relu(self.fc_hidden(torch.cat(parts, dim=1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(x), dim=-1)
