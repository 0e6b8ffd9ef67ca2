"""Shared test setup: a non-interactive matplotlib backend and one torch thread."""

import matplotlib
import torch

matplotlib.use("Agg")
# Tests are small; one thread keeps them stable on shared two-core machines.
torch.set_num_threads(1)
