"""Live tensor storage by category, op by op: the accounting behind `soritune plan`.

`MemoryLedger` is a TorchDispatchMode. Every tensor an aten op returns is registered by its storage
(views share one entry); an entry leaves the ledger when its storage dies: PyTorch keeps a storage's
Python object alive exactly as long as the storage (fake ones too), so a weakref callback on it
fires at the moment the memory would be freed. Categories:

- weights: parameters and buffers of the model (registered up front with `add_model`), including
  packed quantised weights and their scales;
- gradients: the `.grad` of trainable parameters (tagged when the optimizer step begins);
- optimizer: optimizer state (tagged when the step ends; paged bitsandbytes states separately);
- activations: tensors autograd saves for backward (tagged by a saved-tensors hook);
- inputs: the batch;
- temporaries: everything else (intermediate results, casts, dequantised weights, workspace).

Categories are settled when the step ends, so a storage that became an optimizer state counts as
one at the peak even if the peak came while it was being created. The same ledger runs on fake
tensors (the plan) and on real ones (the validation), so the two are compared like for like.
`.item()` on fake tensors (loss logging, token counts, the gradient norm) returns 1.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CATEGORIES = ("weights", "gradients", "optimizer", "optimizer_paged", "activations", "inputs", "temporaries")
GB = 1024 ** 3


@dataclass
class Peak:
    """The live storages at the highest point of the step, and where it was."""

    bytes: int = 0
    phase: str = ""
    op: str = ""
    module: str = ""


@dataclass
class _Entry:
    ref: weakref.ref
    nbytes: int
    category: str
    serial: int  # ids are reused once a storage dies; serials are not
    birth: int = 0  # ledger clock (ops seen) when registered
    death: int | None = None  # clock when freed; alive at the check of every clock in [birth, death)


@dataclass
class LedgerResult:
    peak_bytes: int
    peak_phase: str
    peak_op: str
    peak_module: str
    breakdown_bytes: dict
    phase_peaks_bytes: dict
    n_ops: int
    tensors_at_peak: int = 0
    largest_at_peak: list = field(default_factory=list)


def _is_tensor(x) -> bool:
    return isinstance(x, torch.Tensor)


class MemoryLedger(TorchDispatchMode):
    """with MemoryLedger(fake=True) as ledger: ...step...; ledger.result()"""

    def __init__(self, fake: bool = False):
        super().__init__()
        self.fake = fake
        self.live: dict[int, _Entry] = {}
        self.tags: dict[int, str] = {}  # by serial: category decided after creation (grads, states, saved)
        self._serial = 0
        self.history: list[_Entry] = []  # every entry ever: the peak's contents are rebuilt from it
        self._peak_clock = 0
        self.current = 0
        self.peak = Peak()
        self.phase = "setup"
        self.module = ""
        self.n_ops = 0
        self.phase_peaks: dict[str, int] = {}
        self._saved_hooks = None

    # ---- registration ----------------------------------------------------------------------
    def add(self, t: torch.Tensor, category: str | None = None) -> _Entry | None:
        """Put t's storage on the ledger (once); a category other than temporaries sticks."""
        try:
            st = t.untyped_storage()
        except (NotImplementedError, RuntimeError):  # sparse / exotic tensors: not on the ledger
            return None
        key = id(st)
        entry = self.live.get(key)
        if entry is None:
            self._serial += 1
            entry = _Entry(weakref.ref(st, self._freed(key)), st.nbytes(), "temporaries", self._serial, self.n_ops)
            self.live[key] = entry
            self.history.append(entry)
            self.current += entry.nbytes
        if category is not None and category != "temporaries":
            if entry.category == "temporaries":
                entry.category = category
            self.tags.setdefault(entry.serial, category)
        return entry

    def _freed(self, key: int):
        def gone(_ref):
            entry = self.live.pop(key, None)
            if entry is not None:
                self.current -= entry.nbytes
                entry.death = self.n_ops + 1

        return gone

    def add_model(self, model, batch: dict) -> None:
        for t in list(model.parameters()) + list(model.buffers()):
            self.add(t, "weights")
        for qs_t in _quant_state_tensors(model):
            self.add(qs_t, "weights")
        for v in batch.values():
            if _is_tensor(v):
                self.add(v, "inputs")
        self._note_peak("setup")

    def tag(self, tensors, category: str) -> None:
        for t in tensors:
            if _is_tensor(t):
                entry = self.add(t, category)
                if entry is not None and entry.category not in ("weights", "inputs"):
                    self.tags[entry.serial] = category

    def tag_optimizer(self, optimizer, paged: bool = False) -> None:
        for state in optimizer.state.values():
            self.tag([v for v in state.values() if _is_tensor(v)], "optimizer_paged" if paged else "optimizer")

    # ---- the mode --------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.fake and func is torch.ops.aten._local_scalar_dense.default:
            t = args[0]
            return True if t.dtype == torch.bool else (1 if not t.is_floating_point() else 1.0)
        if self.fake and func is torch.ops.aten.nonzero.default:  # masks on the plan's batch are all True
            t = args[0]
            out = torch.empty((t.numel(), t.dim()), dtype=torch.long, device=t.device)
        else:
            if self.fake and func.overloadpacket.__name__ in _INDEX_OPS:
                args = (args[0], _long_indices(args[1]), *args[2:])
            out = func(*args, **kwargs)
            if self.fake and func is torch.ops.aten.native_layer_norm.default and out[1].dtype in _HALF:
                out = (out[0], out[1].float(), out[2].float())  # the kernels keep mean/rstd in fp32; the meta one does not
        self.n_ops += 1  # the clock: outputs of this op are born at it, the peak check below reads it
        for t in tree_leaves(out):
            if _is_tensor(t):
                self.add(t)
        self._note_peak(str(func.overloadpacket.__name__))
        return out

    def _note_peak(self, op: str) -> None:
        if self.current > self.phase_peaks.get(self.phase, -1):
            self.phase_peaks[self.phase] = self.current
        if self.current > self.peak.bytes:
            self.peak = Peak(self.current, self.phase, op, self.module)
            self._peak_clock = self.n_ops

    # ---- saved tensors (activations) -------------------------------------------------------
    def saved_tensors_hooks(self):
        def pack(t):
            if _is_tensor(t):
                try:
                    entry = self.live.get(id(t.untyped_storage()))
                except (NotImplementedError, RuntimeError):
                    return t
                if entry is not None and entry.category == "temporaries":
                    self.tags.setdefault(entry.serial, "activations")
            return t

        return torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    # ---- result ----------------------------------------------------------------------------
    def result(self) -> LedgerResult:
        t = self._peak_clock
        sizes = {e.serial: (e.nbytes, e.category) for e in self.history
                 if e.birth <= t and (e.death is None or e.death > t)}
        breakdown = {c: 0 for c in CATEGORIES}
        for key, (nbytes, cat) in sizes.items():
            final = cat if cat in ("weights", "inputs") else self.tags.get(key, cat)
            breakdown[final] += nbytes
        largest = sorted(((n, self.tags.get(k, c)) for k, (n, c) in sizes.items()), reverse=True)[:5]
        return LedgerResult(peak_bytes=self.peak.bytes, peak_phase=self.peak.phase, peak_op=self.peak.op,
                            peak_module=self.peak.module, breakdown_bytes=breakdown,
                            phase_peaks_bytes=dict(self.phase_peaks), n_ops=self.n_ops,
                            tensors_at_peak=len(sizes), largest_at_peak=[[n, c] for n, c in largest])


_HALF = (torch.bfloat16, torch.float16)
_INDEX_OPS = {"index", "index_put", "index_put_", "_index_put_impl_"}


def _long_indices(indices):
    """Boolean masks as the integer indices they select when all True (fake tensors have no values)."""
    out = []
    for m in indices:
        if _is_tensor(m) and m.dtype == torch.bool:
            out += [torch.zeros(m.numel(), dtype=torch.long, device=m.device) for _ in range(m.dim())]
        else:
            out.append(m)
    return out


def _quant_state_tensors(model):
    """Tensors held by bitsandbytes quant states (absmax, nested absmax, code) and int8 scales."""
    seen = set()
    for mod in model.modules():
        w = getattr(mod, "weight", None)
        for holder in (getattr(w, "quant_state", None), getattr(getattr(mod, "state", None), "SCB", None) and mod.state):
            if holder is None:
                continue
            for name in ("absmax", "code", "offset", "SCB", "CB"):
                t = getattr(holder, name, None)
                if _is_tensor(t) and id(t) not in seen:
                    seen.add(id(t))
                    yield t
            inner = getattr(holder, "state2", None)
            if inner is not None:
                for name in ("absmax", "code"):
                    t = getattr(inner, name, None)
                    if _is_tensor(t) and id(t) not in seen:
                        seen.add(id(t))
                        yield t
        scb = getattr(w, "SCB", None)
        if _is_tensor(scb) and id(scb) not in seen:
            seen.add(id(scb))
            yield scb
