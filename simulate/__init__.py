"""simulate: data models, initialization and the engines (exact gradient flow, batched discrete training)."""

from simulate.data import Dataset, make_data
from simulate.initialization import INIT_SCHEMES, init_params
from simulate.result import STATUSES, RunResult

__all__ = ["INIT_SCHEMES", "STATUSES", "Dataset", "RunResult", "init_params", "make_data"]
