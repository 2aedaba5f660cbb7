import torch

# Tests compare numbers across code paths; keep CPU results deterministic and
# leave the second core to pytest-xdist's other worker.
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True, warn_only=True)
