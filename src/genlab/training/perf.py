"""Speed settings, resolved once per run, and the helpers the training loop uses to apply them.

``train.precision``, ``train.compile``, ``train.channels_last`` and ``train.threads`` accept ``auto``;
:func:`resolve_runtime` turns them into what is fastest *and* correct on the device found, and the resolved
:class:`Runtime` is written to ``runtime.json`` in the run folder and to every checkpoint
(``extra["runtime"]``). What ``auto`` picks, and why (measurements in docs/benchmarks.md):

- precision: on a GPU, ``bf16`` autocast where it has bfloat16 units (compute capability 8.0+: Ampere, Hopper; no
  loss scaling needed), ``fp16`` with loss scaling on Volta and Turing (7.x: fp16 tensor cores, bf16 only emulated,
  which ``torch.cuda.is_bf16_supported()`` counts as support), ``fp32`` on older GPUs; each asked of the run's own
  device (:func:`gpu_precision`), not the current one. On the CPU ``auto`` takes ``bf16`` autocast where the CPU
  has bfloat16 units (:func:`cpu_bf16_units`: AMX or AVX-512 BF16) *and* the model is one whose FID bf16 kept at
  equal steps (:data:`CPU_BF16_KEEPS`, measured with benchmarks/precision.py), else float32 (STYLE principle 10:
  emulated bf16 is several times slower, and an unmeasured model keeps the safe default). ``fp16`` is a
  fallback for older GPUs and adds one ``GradScaler`` per optimizer.
- channels_last: on for models with convolutions (oneDNN on CPU and cuDNN on GPU have faster NHWC kernels).
- compile: ``torch.compile`` of every network's ``forward`` on CUDA (Triton present); off on the CPU, where
  compiling costs more than short runs gain (opt in with ``train.compile=true``; needs a C++ compiler). A network
  that the objective differentiates twice (a gradient penalty's ``create_graph``: WGAN-GP's critic, R3GAN's D)
  stays eager: torch.compile's autograd does not support double backward (``Objective.double_backward``).
- threads: the cores this process may use, split between the ranks on this node; on the CPU the count then
  adapts while the run trains (``training.threads.ThreadGovernor``: fewer threads while other programs keep
  cores busy, the full count again once they are free). ``train.threads=N`` or ``OMP_NUM_THREADS`` pins it.
- always: fused Adam (foreach RMSprop) on CPU and CUDA; TF32 matmuls/convolutions and cuDNN autotuning on CUDA.

Nothing here touches CUDA at import time.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Collection
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from genlab.config import OptimConfig, TrainConfig
from genlab.data.base import to_float
from genlab.errors import ConfigError
from genlab.threads import usable_cores as cpu_cores  # taskset/cgroup affinity, unlike os.cpu_count

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass(frozen=True)
class Runtime:
    """The resolved speed settings of one run (what ``auto`` became)."""

    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 | fp16
    compile: bool = False
    compiled: tuple[str, ...] = ()  # the networks torch.compile runs (compile=True: all but the twice-differentiated)
    compile_backend: str = "inductor"  # torch.compile's backend (tests: aot_eager, which needs no code generation)
    channels_last: bool = False
    threads: int = 1
    adaptive_threads: bool = False  # the CPU thread count follows the free cores (training.threads)
    tf32: bool = False  # TF32 tensor-core matmuls/convolutions for float32 work (CUDA)
    cudnn_benchmark: bool = False
    optimizer: str = "fused"  # how optimizer steps run: fused | foreach | for-loop
    world_size: int = 1
    sync_batchnorm: bool = False
    torch_version: str = str(torch.__version__)
    notes: tuple[str, ...] = field(default_factory=tuple)  # why auto chose what it chose

    def as_dict(self) -> dict:
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["compiled"] = list(self.compiled)
        return d

    @property
    def device_type(self) -> str:
        return torch.device(self.device).type

    @property
    def amp_dtype(self) -> torch.dtype | None:
        return AMP_DTYPES.get(self.precision)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self):
        """The context a phase's forward pass and loss run in (a no-op for fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp_dtype)

    def describe(self) -> str:
        parts = [self.device, self.precision, f"{self.threads} threads", f"{self.optimizer} optimizer"]
        compiled = f"torch.compile ({', '.join(self.compiled)})" if self.compiled else "torch.compile"
        parts += [name for name, on in (("channels_last", self.channels_last), (compiled, self.compile),
                                        ("TF32", self.tf32), ("SyncBatchNorm", self.sync_batchnorm)) if on]
        if self.world_size > 1:
            parts.append(f"{self.world_size} ranks")
        return ", ".join(parts)


def has_convolutions(nets: nn.Module) -> bool:
    return any(isinstance(m, CONV_TYPES) for m in nets.modules())


def has_batchnorm(nets: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in nets.modules())


def _cxx_compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _has_triton() -> bool:
    try:
        from torch.utils._triton import has_triton

        return bool(has_triton())
    except Exception:
        return False


def _flag(value: str) -> bool | None:
    """auto | true | false (any case, as OmegaConf may hand over "True") -> None | True | False."""
    v = str(value).lower()
    return None if v == "auto" else v == "true"


def cpu_bf16_units(cpuinfo: str | None = None) -> str | None:
    """The CPU's bfloat16 matrix/vector units, from the flags of ``/proc/cpuinfo`` (``cpuinfo``: its text):
    "AMX" (Intel Sapphire Rapids and later), "AVX-512 BF16" (Intel Cooper Lake, AMD Zen 4 and later), or None
    (none, or not Linux)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX-512 BF16" if "avx512_bf16" in flags else None


#: models whose quality bf16 autocast keeps at equal steps on a CPU with bfloat16 units, and which it makes faster:
#: model name -> the evidence (benchmarks/precision.py: 3 seeds, bf16's mean FID within one fp32 std, at least 1.1x
#: less command time; docs/benchmarks.md section 9). ``precision=auto`` takes bf16 on such CPUs for these models
#: only; the VAE kept its FID but gained nothing (1.03x), the others were not measured. Add one with its numbers.
CPU_BF16_KEEPS: dict[str, str] = {
    "dcgan": "the demo recipe, 1250 steps, 3 seeds: classifier FID 22.84 +- 1.10 (fp32) vs 21.73 +- 0.90 (bf16), "
             "1.49x faster on a 2-core AMD EPYC with AVX-512 BF16; 58.14 +- 1.24 vs 57.46 +- 1.74 in 0.62x the time "
             "on a 2-core Intel Xeon with AMX",
    "mlp-gan": "fashion_mnist_mlp_gan, 1250 steps, 3 seeds: 108.81 +- 4.57 vs 104.41 +- 6.40, 1.21x faster "
               "(AVX-512 BF16)",
    "cgan": "fashion_mnist_cgan28, 1250 steps, 3 seeds: 41.99 +- 6.54 vs 41.29 +- 4.59, 1.15x faster "
            "(AVX-512 BF16)",
    "wgan": "fashion_mnist_wgan_clip, 1250 steps, 3 seeds: 81.56 +- 3.61 vs 81.40 +- 2.36, 1.16x faster "
            "(AVX-512 BF16)",
}


def cpu_precision(model: str, units: str | None = None) -> tuple[str, str]:
    """(what ``precision=auto`` takes on this CPU for ``model``, why); ``units``: :func:`cpu_bf16_units`."""
    units = cpu_bf16_units() if units is None else units
    if not units:
        return "fp32", ("float32: this CPU has no bfloat16 units, so bf16 would be emulated and several times "
                        "slower")
    if model in CPU_BF16_KEEPS:
        return "bf16", (f"bf16 autocast: this CPU has bfloat16 units ({units}) and {model} keeps its FID in bf16 "
                        f"at equal steps ({CPU_BF16_KEEPS[model]}); train.precision=fp32 turns it off")
    return "fp32", (f"float32: this CPU has bfloat16 units ({units}) but bf16's quality for {model} was not "
                    "measured (benchmarks/precision.py); train.precision=bf16 trains faster, check its FID")


def gpu_precision(device: torch.device) -> tuple[str, str]:
    """(what ``precision=auto`` takes on this GPU, why), from its compute capability."""
    major, minor = torch.cuda.get_device_capability(device)
    what = f"{torch.cuda.get_device_name(device)} (compute capability {major}.{minor})"
    if major >= 8:
        return "bf16", f"bf16 autocast: {what} has bfloat16 units"
    if major >= 7:
        return "fp16", (f"fp16 autocast with loss scaling: {what} has float16 tensor cores and no bfloat16 units "
                        "(bf16 would be emulated)")
    return "fp32", f"float32: {what} has no tensor cores"


def resolve_runtime(t: TrainConfig, device: torch.device, nets: nn.ModuleDict, *, world_size: int = 1,
                    local_world_size: int = 1, double_backward: Collection[str] = (), model: str = "") -> Runtime:
    """``auto`` settings -> concrete ones for ``device`` and these networks; impossible requests -> ConfigError.

    ``model``: the model's registered name (``cfg.model.name``), for the CPU's precision (:data:`CPU_BF16_KEEPS`).

    ``double_backward``: the networks the objective differentiates twice (``Objective.double_backward``); they are
    never compiled."""
    notes: list[str] = []
    cuda = device.type == "cuda"

    precision = str(t.precision).lower()
    if precision == "auto":
        if cuda:
            precision, why = gpu_precision(device)
        else:
            precision, why = cpu_precision(model) if device.type == "cpu" else ("fp32", "float32 on this device")
        notes.append(f"precision auto -> {precision}: {why}")
    elif precision == "bf16" and cuda and gpu_precision(device)[0] != "bf16":
        raise ConfigError(f"train.precision=bf16 but {torch.cuda.get_device_name(device)} has no bfloat16 units "
                          "(it would emulate them, several times slower); use train.precision=fp16 (with loss "
                          "scaling) or fp32")
    elif precision != "fp32" and device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.precision={precision} is supported on cpu and cuda, not {device.type}; "
                          "use train.precision=fp32")

    channels_last = _flag(t.channels_last)
    conv = has_convolutions(nets)
    if channels_last is None:
        channels_last = conv and device.type in ("cpu", "cuda")
        notes.append(f"channels_last auto -> {channels_last}: "
                     + ("the model has convolutions" if conv else "no convolutions in the model"
                        if device.type in ("cpu", "cuda") else f"not used on {device.type}"))

    compile_ = _flag(t.compile)
    if compile_ is None:
        compile_ = cuda and _has_triton()
        notes.append(f"compile auto -> {compile_}: " + (
            "CUDA with Triton" if compile_ else "CUDA without Triton" if cuda else
            "on the CPU compiling costs more than typical runs gain (measured; opt in with train.compile=true)"))
    elif compile_:
        if cuda and not _has_triton():
            raise ConfigError("train.compile=true needs Triton for CUDA (pip install triton); "
                              "use train.compile=false")
        if device.type == "cpu" and _cxx_compiler() is None:
            raise ConfigError("train.compile=true on the CPU needs a C++ compiler (g++ or clang++; set CXX) for "
                              "TorchInductor; install one or use train.compile=false")

    compiled: tuple[str, ...] = ()
    if compile_:
        names = list(nets.keys()) if isinstance(nets, nn.ModuleDict) else []
        compiled = tuple(n for n in names if n not in double_backward)
        eager = [n for n in names if n in double_backward]
        if eager:
            notes.append(f"compile: {', '.join(eager)} stays eager (a gradient penalty differentiates it twice, "
                         "which torch.compile does not support)")

    adaptive = False
    if t.threads > 0:
        threads = t.threads
    elif device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, cpu_cores() // max(1, local_world_size))
        adaptive = threads > 1
        notes.append(f"threads auto -> {threads}: {cpu_cores()} usable cores / {max(1, local_world_size)} "
                     "local ranks" + ("; fewer while other programs keep cores busy (train.threads=N pins it)"
                                      if adaptive else ""))
    else:
        threads = torch.get_num_threads()

    return Runtime(
        device=str(device), precision=precision, compile=bool(compile_), compiled=compiled,
        channels_last=bool(channels_last),
        threads=threads, adaptive_threads=adaptive, tf32=cuda, cudnn_benchmark=cuda,
        optimizer="fused" if device.type in ("cpu", "cuda") else "for-loop",
        world_size=world_size, sync_batchnorm=bool(cuda and world_size > 1 and has_batchnorm(nets)),
        notes=tuple(notes),
    )


def apply_process_settings(rt: Runtime) -> None:
    """Process-wide switches: thread count, TF32, cuDNN autotuning."""
    if torch.get_num_threads() != rt.threads:
        torch.set_num_threads(rt.threads)
    if rt.device_type == "cuda":
        conv = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None and hasattr(torch.backends.cuda.matmul, "fp32_precision") \
                and hasattr(conv, "fp32_precision"):
            # PyTorch >= 2.9 API (mixing it with the allow_tf32 flags is an error)
            torch.backends.cuda.matmul.fp32_precision = "tf32" if rt.tf32 else "ieee"
            conv.fp32_precision = "tf32" if rt.tf32 else "ieee"
        else:
            torch.backends.cuda.matmul.allow_tf32 = rt.tf32
            torch.backends.cudnn.allow_tf32 = rt.tf32
        torch.backends.cudnn.benchmark = rt.cudnn_benchmark


def optimizer_options(o: OptimConfig, rt: Runtime) -> dict:
    """Keyword arguments that pick the optimizer implementation (same maths, fewer kernel launches)."""
    if rt.optimizer == "fused" and o.optimizer == "adam":
        return {"fused": True}
    if rt.optimizer in ("fused", "foreach"):
        return {"foreach": True}
    return {}


def retarget_optimizer(opt: torch.optim.Optimizer, options: dict) -> None:
    """After ``load_state_dict``: keep this run's implementation flags (a checkpoint carries the writer's) and
    give every state tensor its parameter's device and memory format (a checkpoint from another device or
    layout resumes here)."""
    for group in opt.param_groups:
        for k in ("fused", "foreach"):
            if k in group:
                group[k] = options.get(k, None if k == "foreach" else False)
        for p in group["params"]:
            state = opt.state.get(p, {})
            for k, v in list(state.items()):
                if not isinstance(v, torch.Tensor):
                    continue
                if v.shape == p.shape and (v.device != p.device or v.stride() != p.stride()):
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
                elif k == "step":
                    on_param = group.get("fused") or group.get("capturable")
                    state[k] = v.to(p.device if on_param else "cpu", torch.float32)


def prepare_networks(nets: nn.ModuleDict, rt: Runtime) -> None:
    """Memory layout (and SyncBatchNorm for several GPUs) before optimizers, EMA and DDP see the networks."""
    if rt.sync_batchnorm:
        for name in list(nets.keys()):
            nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(nets[name])
    if rt.channels_last:
        nets.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # Module.to takes it


#: the methods objectives call besides ``forward`` (D.heads, D.features, G.pre_tanh in training/families/); compiled
#: with it, since ``nn.Module.compile`` covers ``__call__`` only. Every call of a network must be compiled: an eager
#: BatchNorm call saves its running statistics for backward without bumping their version, and a compiled call of
#: the same layer before that backward writes them back with a real copy_, which autograd then refuses.
COMPILED_METHODS = ("heads", "features", "pre_tanh")


def compile_networks(nets: nn.ModuleDict, rt: Runtime) -> None:
    """``torch.compile`` each network in ``rt.compiled`` in place: its ``forward`` and :data:`COMPILED_METHODS`
    (state_dict keys stay as they were; a compiled method is an attribute of the instance)."""
    if not rt.compile:
        return
    for name in rt.compiled:
        net = nets[name]
        for method in COMPILED_METHODS:
            if callable(getattr(type(net), method, None)):
                setattr(net, method, torch.compile(getattr(net, method), backend=rt.compile_backend))
        net.compile(backend=rt.compile_backend)


def make_scalers(optimizers: dict, rt: Runtime) -> dict[str, torch.amp.GradScaler | None]:
    """fp16 only: one loss scaler per optimizer (each phase steps its own optimizer, possibly n_critic times)."""
    if rt.precision != "fp16":
        return {k: None for k in optimizers}
    return {k: torch.amp.GradScaler(rt.device_type) for k in optimizers}


def input_batch(images_uint8: torch.Tensor, rt: Runtime) -> torch.Tensor:
    """uint8 (N, C, H, W) batch -> float [-1, 1] in the run's memory layout (converted while still 1 byte/px)."""
    if rt.channels_last and images_uint8.ndim == 4:
        images_uint8 = images_uint8.contiguous(memory_format=torch.channels_last)
    return to_float(images_uint8)
