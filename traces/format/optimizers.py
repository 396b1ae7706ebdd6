"""Which optimizers a trace can describe: their update is element-wise work per weight.

The update pass of a trace (``hwsim.update``) is a read-modify-write of every weight, its gradient
and the optimizer's weight-shaped state tensors on the vector unit. That is the whole step of the
optimizers below. An optimizer whose step runs matrix products (``torch.optim.Muon``: a
Newton–Schulz orthogonalization of every 2-D gradient) does GEMM work a trace cannot hold, and an
optimizer hwsim does not know may do anything, so both are refused, the latter unless the user
declares it element-wise with its number of state tensors (``traces.record(...,
optimizer_state_tensors=N)``); its steps are then watched and a matrix product in one is refused.
"""

from __future__ import annotations

from typing import Any

from .errors import RecorderError

# torch.optim classes whose step is element-wise per weight (no matrix products)
ELEMENTWISE = frozenset({"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
                         "Adadelta", "ASGD", "Rprop", "SparseAdam"})
# torch.optim classes whose step runs GEMMs hwsim does not model, with what they run
WITH_GEMMS = {"Muon": "a Newton-Schulz orthogonalization of every 2-D gradient (5 iterations of 3 "
                      "matrix products each)"}


def is_known(optimizer: Any) -> bool:
    """Whether ``optimizer`` is exactly one of torch's element-wise optimizers (not a subclass,
    which may override ``step``)."""
    cls = type(optimizer)
    return cls.__module__.startswith("torch.optim") and cls.__name__ in ELEMENTWISE


def check(optimizer: Any, declared_state_tensors: int | None) -> None:
    """RecorderError for an optimizer whose update a trace cannot describe: one that runs GEMMs,
    or one hwsim does not know and the user did not declare element-wise."""
    name = type(optimizer).__name__
    if name in WITH_GEMMS and type(optimizer).__module__.startswith("torch.optim"):
        raise RecorderError(
            f"optimizer {name} runs matrix products in its step ({WITH_GEMMS[name]}): hwsim's update "
            "pass is element-wise, so the trace would miss that GEMM work; record with an element-wise "
            f"optimizer ({', '.join(sorted(ELEMENTWISE - {'SparseAdam'}))})")
    if is_known(optimizer) or declared_state_tensors is not None:
        return
    raise RecorderError(
        f"optimizer {name} is not one hwsim knows ({', '.join(sorted(ELEMENTWISE))}), so its update "
        "work is unknown: if its step is element-wise per weight, declare how many weight-shaped "
        "state tensors it keeps with traces.record(..., optimizer_state_tensors=N) (its steps are "
        "then checked for matrix products)")


def state_tensors(optimizer: Any) -> int:
    """Weight-shaped state tensors per weight the optimizer keeps now (SGD with momentum: 1, Adam:
    2, Adam with amsgrad: 3, SGD without momentum: 0): the most over its parameters."""
    most = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            shaped = [v for v in st.values() if hasattr(v, "numel") and v.numel() == p.numel() > 1]
            most = max(most, len(shaped))
    return most
