"""Parameters, training step time, inference time and peak memory of the transformer backbones beside DeepReg's
``local`` and ``unet``, side by side in one run (issue 16, item 4).

::

    python benchmarks/bench_transformers.py                     # default cases at 80x96x112 and 160x192x224
    python benchmarks/bench_transformers.py --quick             # 80x96x112 only, 2 timed steps, 1 timed inference
    python benchmarks/bench_transformers.py --mixed-precision   # each case also under mixed_float16, side by side
    python benchmarks/bench_transformers.py --cases local transmorph_tiny --sizes 80x96x112
    python benchmarks/bench_transformers.py --cases transmorph_large   # 108 M parameters: only when asked
    python benchmarks/bench_transformers.py --write             # also replaces its block in benchmarks/README.md

Cases (:data:`CASES`; a case is a model task and a backbone config, so a new backbone is one more entry):

- registration, the ``ddf`` model: image loss lncc (kernel 9) and bending regulariser (weight 5), as the
  ``paired_brain`` config of ``bench_deepreg.py``; batch 1; a synthetic smooth pair held in memory (the fixed
  image a random coarse grid linearly up-sampled, the moving image the fixed one warped by a smooth random
  displacement of up to 4 voxels). Backbones: DeepReg's ``local`` (16 initial channels, extract levels 0-3,
  as DeepReg's configs and ``bench_deepreg.py``), DeepReg's ``unet`` (16 initial channels, depth 3, max
  pooling, concatenated skips, as DeepReg's ``unpaired_ct_abdomen`` demo; its ``unpaired_mr_brain`` demo is
  the same with strided-convolution down-sampling), ``transmorph`` presets ``tiny``, ``small``, ``base`` and
  (only when named) ``large``, and ``base`` with gradient checkpointing (only when named).
- segmentation, the ``segmentation`` model segmenting the fixed image of the pair (one image per step):
  4 sigmoid classes (the coarse OASIS labels of ``config/wssamnet_pp_oasis_segmenter.yaml``), Dice loss, a
  random one-hot label (a smooth random field cut at its quintiles: background and 4 structures).
  Backbones: ``unet_segmenter`` as that config has it (channels 16-128, instance norm) and ``swin_unetr``
  preset ``wssamnet_pp`` (the 2.2 M-parameter one WSSAMNet++ reports); ``swin_unetr`` preset ``base`` only
  when named.

Each case, size and precision runs in a fresh child process (``--case``, internal), which

1. builds the model through the registry (``REGISTRY.build_model``, as ``tfreg_train`` does), with the Keras
   global dtype policy set first when the precision is not float32 (``mixed_float16``: float16 compute,
   float32 variables; Keras wraps the optimizer in a ``LossScaleOptimizer``);
2. times inference: ``model.predict_on_batch`` on the images (``training=False``, compiled), one first call
   (building and tracing) then the median of ``--repeat`` calls (registration: the DDF and the warped moving
   image of the pair); the child's ``ru_maxrss`` after it is the inference peak;
3. times training: ``model.compile(Adam(1e-4))`` then ``model.train_on_batch`` on the same in-memory batch,
   one first call (tracing) then the median of ``--steps`` calls.

It prints one JSON line after each phase, so a child killed in training keeps its parameters and
inference time. The parent reads the child's peak RSS (``ru_maxrss``, the whole process with TensorFlow)
with ``os.wait4`` (so a killed child is measured too), kills a child past ``--max-rss-gib`` or ``--timeout``
and records that in the table instead of a number, as it records a child's Python error (its phase and
message) or a backbone that is not registered in this tfreg. The 1-minute load average (what ``uptime``
prints first) is recorded before and after each child. Raw results: ``benchmarks/results/bench_transformers.json``,
rewritten after every child.

``train_on_batch`` and ``predict_on_batch`` are Keras' own and backend-agnostic: ``--backend jax`` runs the
children under ``KERAS_BACKEND=jax``. On a GPU the child also reports the device's peak memory.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # siblings: bench_train's timer (stdlib imports only at its top), readme_block

from bench_train import _timed  # noqa: E402
from readme_block import write_block  # noqa: E402
from watched_child import run_watched  # noqa: E402

RESULTS = HERE / "results" / "bench_transformers.json"
SIZES = ((80, 96, 112), (160, 192, 224))
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
#: the registration losses: bench_deepreg.py's paired_brain config (lncc k9 + bending x5)
REGISTRATION_LOSS = {
    "image": {"name": "lncc", "kernel_size": 9, "weight": 1.0},
    "regularization": {"name": "bending", "weight": 5.0},
}
#: the segmentation head and loss: config/wssamnet_pp_oasis_segmenter.yaml (4 coarse OASIS labels, Dice)
NUM_LABELS = 4
SEGMENTATION_TRAIN = {
    "head": {"num_classes": NUM_LABELS, "activation": "sigmoid"},
    "loss": {"segmentation": {"name": "dice", "weight": 1.0}},
    "segment": "fixed",
}
#: the largest displacement of the synthetic pair, voxels
MAX_DISPLACEMENT = 4.0
GIB = 2.0**30


@dataclass(frozen=True)
class Case:
    """One model to measure: ``task`` (``registration``: the ``ddf`` model; ``segmentation``), the backbone config
    as a ``train.backbone`` entry, a short description for the table, and whether the default run includes it."""

    task: str
    backbone: Dict
    description: str
    default: bool = True


CASES: Dict[str, Case] = {
    "local": Case(
        "registration",
        {"name": "local", "num_channel_initial": 16, "extract_levels": [0, 1, 2, 3]},
        "DeepReg `local` (LocalNet), 16 channels, levels 0-3",
    ),
    "unet": Case(
        "registration",
        {"name": "unet", "num_channel_initial": 16, "depth": 3, "pooling": True, "concat_skip": True},
        "DeepReg `unet`, 16 channels, depth 3, max pooling, concatenated skips",
    ),
    "transmorph_tiny": Case("registration", {"name": "transmorph", "preset": "tiny"}, "`transmorph` tiny"),
    "transmorph_small": Case("registration", {"name": "transmorph", "preset": "small"}, "`transmorph` small"),
    "transmorph_base": Case("registration", {"name": "transmorph", "preset": "base"}, "`transmorph` base"),
    "transmorph_base_checkpointed": Case(
        "registration",
        {"name": "transmorph", "preset": "base", "gradient_checkpointing": True},
        "`transmorph` base, gradient checkpointing",
        default=False,
    ),
    "transmorph_large": Case(
        "registration", {"name": "transmorph", "preset": "large"}, "`transmorph` large", default=False
    ),
    "unet_segmenter": Case(
        "segmentation",
        {"name": "unet_segmenter", "channels": [16, 32, 64, 128], "norm": "instance"},
        "`unet_segmenter`, channels 16-128, instance norm",
    ),
    "swin_unetr_wssamnet_pp": Case(
        "segmentation", {"name": "swin_unetr", "preset": "wssamnet_pp"}, "`swin_unetr` wssamnet_pp"
    ),
    "swin_unetr_base": Case(
        "segmentation", {"name": "swin_unetr", "preset": "base"}, "`swin_unetr` base", default=False
    ),
}
DEFAULT_CASES = [name for name, case in CASES.items() if case.default]


def parse_size(text: str) -> Tuple[int, ...]:
    """``"80x96x112"`` -> ``(80, 96, 112)``."""
    try:
        size = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) not in (2, 3) or min(size) < 1:
        raise argparse.ArgumentTypeError(f"a size is 2 or 3 positive ints joined by x, e.g. 80x96x112; got {text!r}")
    return size


def size_text(size: Sequence[int]) -> str:
    return "x".join(str(s) for s in size)


# ----------------------------------------------------------------------------------------------------------------
# Child: one case, size and precision.


def missing_backbone(case: Case) -> Optional[str]:
    """Why ``case`` cannot run in this tfreg (its backbone is not registered), or None."""
    from tfreg.registry import BACKBONE_CLASS, REGISTRY

    name = case.backbone["name"]
    if REGISTRY.contains(BACKBONE_CLASS, name):
        return None
    return f"backbone {name!r} is not registered in this tfreg (not merged yet?)"


def synthetic_inputs(task: str, size: Sequence[int], seed: int = 0) -> Tuple[dict, dict]:
    """``(training inputs, inference inputs)`` of batch 1 as NumPy float32 arrays.

    The fixed image is a coarse uniform random grid (about 16 voxels per cell) linearly up-sampled to ``size``;
    the moving image is it warped (linear, edges repeated) by a displacement field made the same way, scaled to
    at most ``MAX_DISPLACEMENT`` voxels. Segmentation: the fixed image's label is another such field cut at its
    quintiles into background and ``NUM_LABELS`` structures, one-hot ``(1, *size, NUM_LABELS)``.
    """
    import numpy as np
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    coarse = tuple(max(2, -(-s // 16)) for s in size)

    def smooth():
        field = ndimage.zoom(rng.random(coarse), [s / c for s, c in zip(size, coarse)], order=1, mode="nearest")
        return field[tuple(slice(0, s) for s in size)].astype(np.float32)

    fixed = smooth()
    ddf = np.stack([smooth() - 0.5 for _ in size])
    ddf *= MAX_DISPLACEMENT / max(np.abs(ddf).max(), 1e-6)
    grid = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in size], indexing="ij")
    moving = ndimage.map_coordinates(fixed, [g + d for g, d in zip(grid, ddf)], order=1, mode="nearest")
    images = {
        "moving_image": moving[None].astype(np.float32),
        "fixed_image": fixed[None],
        "indices": np.zeros((1, 2), np.float32),
    }
    if task == "registration":
        return images, images
    levels = smooth()
    label_map = np.digitize(levels, np.quantile(levels, np.linspace(0, 1, NUM_LABELS + 2)[1:-1]))
    one_hot = (label_map[..., None] == np.arange(1, NUM_LABELS + 1)).astype(np.float32)[None]
    return dict(images, moving_label=one_hot, fixed_label=one_hot), images


def build_model(case: Case, size: Sequence[int]):
    """The case's model at ``size`` (batch 1), through the registry as ``tfreg_train`` builds it."""
    from tfreg.registry import REGISTRY

    if case.task == "registration":
        config = dict(name="ddf", labeled=False, config={"backbone": dict(case.backbone), "loss": REGISTRATION_LOSS})
    elif case.task == "segmentation":
        config = dict(name="segmentation", labeled=True, config=dict(SEGMENTATION_TRAIN, backbone=dict(case.backbone)))
    else:
        raise ValueError(f"unknown task {case.task!r}")
    return REGISTRY.build_model(
        config=dict(config, moving_image_size=tuple(size), fixed_image_size=tuple(size), index_size=2, batch_size=1)
    )


def _rss_peak_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB  # ru_maxrss is in KiB on Linux


def _device_peak_gib() -> Optional[float]:
    """The accelerator's peak memory so far (GiB), None on CPU."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return None
        return device.memory_stats().get("peak_bytes_in_use", 0) / GIB
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return None
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / GIB
    return None


def _error_text(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"
    return text if len(text) <= 240 else text[:237] + "..."


def measure(name: str, size: Sequence[int], precision: str, steps: int, repeat: int, emit=None) -> dict:
    """Parameters, inference and training times of case ``name`` at ``size`` in this process (see the module
    docstring). ``emit(result)`` is called after each phase with the result so far. A Python error is
    recorded as ``error`` (``"<phase>: <type>: <first line>"``), never raised."""
    import keras
    import numpy as np

    emit = emit or (lambda result: None)
    case = CASES[name]
    result = {"case": name, "size": list(size), "precision": precision, "backend": keras.backend.backend()}
    reason = missing_backbone(case)
    if reason:
        result["error"] = reason
        result["missing"] = True
        emit(result)
        return result
    phase = "build"
    policy = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy(precision)
        keras.utils.set_random_seed(0)
        train_inputs, infer_inputs = synthetic_inputs(case.task, size)
        result["start_rss_gib"] = _rss_peak_gib()
        model = build_model(case, size)
        phase = "inference"
        result["infer"] = _timed(lambda: model.predict_on_batch(infer_inputs), repeat)
        result["params"] = int(model.count_params())
        result["trainable_params"] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        result["infer_peak_rss_gib"] = _rss_peak_gib()
        result["infer_device_peak_gib"] = _device_peak_gib()
        emit(result)
        phase = "training"
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
        result["train"] = _timed(lambda: model.train_on_batch(train_inputs), steps)
        result["train_peak_rss_gib"] = _rss_peak_gib()
        result["device_peak_gib"] = _device_peak_gib()
    except Exception as error:  # recorded in the table: one case failing is a result, not the end of the run
        result["error"] = f"{phase}: {_error_text(error)}"
    finally:
        keras.mixed_precision.set_global_policy(policy)  # in-process callers (tests) get their policy back
    emit(result)
    return result


# ----------------------------------------------------------------------------------------------------------------
# Parent: one child per case, size and precision; the table.


def _crash_text(stderr: str, returncode: int) -> str:
    """The Python exception line of a child that died without reporting, else its last line or exit code."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.split(":", 1)[0].endswith(("Error", "Exception")) and ":" in line]
    if returncode < 0:
        return f"killed by signal {-returncode}" + (" (out of memory?)" if returncode == -9 else "")
    return (errors or lines or [f"exit code {returncode}"])[-1][:400]


def run_child(
    name: str,
    size: Sequence[int],
    precision: str,
    steps: int,
    repeat: int,
    timeout: float,
    max_rss_gib: float,
    backend: Optional[str] = None,
) -> dict:
    """Runs :func:`measure` in a fresh child process; its result plus ``peak_rss_gib`` (the child's ``ru_maxrss``),
    ``wall_s``, ``load_before``/``load_after`` (1-minute load average), and ``error`` when it failed or was killed."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if backend:
        env["KERAS_BACKEND"] = backend
    command = [sys.executable, __file__, "--case", name, "--size", size_text(size), "--precision", precision]
    command += ["--steps", str(steps), "--repeat", str(repeat)]
    max_rss_kib = max_rss_gib * GIB / 1024
    result = {"case": name, "size": list(size), "precision": precision, "load_before": os.getloadavg()[0]}
    run = run_watched(command, env, REPO, timeout, max_rss_kib)
    killed, stdout, stderr = run.killed, run.stdout, run.stderr
    for line in stdout.splitlines():  # one line per phase, later ones complete earlier ones
        if line.startswith("{"):
            result.update(json.loads(line))
    result.update(
        peak_rss_gib=run.peak_kib * 1024 / GIB,
        wall_s=run.wall_s,
        returncode=run.returncode,
        load_after=os.getloadavg()[0],
    )
    if killed:
        result["error"] = f"{killed} in {'training' if 'infer' in result else 'build/inference'}"
        result["killed"] = True
    elif run.returncode != 0 and "error" not in result:
        result["error"] = _crash_text(stderr, run.returncode)
    if run.returncode != 0 and not killed:
        print(
            f"{name} {size_text(size)} {precision} failed (exit {run.returncode}):\n{stderr[-2000:]}", file=sys.stderr
        )
    return result


def _fmt(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def _cells(r: Optional[dict], notes: List[str]) -> List[str]:
    """Train s/step, infer s, peak RSS (end / after inference) and load cells of one result; an error becomes a
    numbered note, referenced from the figures it left out."""
    if r is None:
        return ["not run"] * 4
    load = f"{r['load_before']:.1f} / {r['load_after']:.1f}" if "load_after" in r else "-"
    if r.get("missing"):
        return ["not registered", "-", "-", load]
    mark = ""
    if "error" in r:
        notes.append(f"{r['case']} {size_text(r['size'])} {r['precision']}: {r['error']}")
        mark = f"{'killed' if r.get('killed') else 'failed'} [{len(notes)}]"
    figures = [f"{r[key]['s_per_step']:.2f}" if key in r else mark for key in ("train", "infer")]
    peak = f"{_fmt(r.get('peak_rss_gib'), '.1f')} / {_fmt(r.get('infer_peak_rss_gib'), '.1f')}"
    return figures + [peak, load]


def table(results: List[dict], precisions: Sequence[str]) -> str:
    """The Markdown table: a row per case and size, the precisions side by side; errors as numbered notes."""
    import keras

    cpu = "?"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    backends = sorted({r["backend"] for r in results if "backend" in r}) or [keras.backend.backend()]
    steps = sorted({r["train"]["steps"] for r in results if "train" in r})
    repeats = sorted({r["infer"]["steps"] for r in results if "infer" in r})
    lines = [
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d} UTC, {platform.machine()} {cpu}, "
        f"{os.cpu_count()} CPU cores shared with other jobs (noisy: load = 1-minute load average before / after "
        f"each child), {memory:.0f} GiB RAM; Keras {keras.__version__}, backend {', '.join(backends)}. Batch 1, "
        f"each case a fresh process. Params = trainable parameters. Train = `train_on_batch` s/step, the median of "
        f"{'/'.join(map(str, steps)) or '-'} steps after the first (tracing); infer = `predict_on_batch` s per pair "
        f"(segmentation: per image), the median of {'/'.join(map(str, repeats)) or '-'} after the first; peak = "
        "the child's ru_maxrss in GiB (whole process, TensorFlow included), at its end / after inference.",
        "",
    ]
    header = ["model", "size", "params"]
    for precision in precisions:
        suffix = f" ({precision})" if len(precisions) > 1 else ""
        header += [f"train s/step{suffix}", f"infer s{suffix}", f"peak GiB{suffix}", f"load{suffix}"]
    lines += ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    by_key = {(r["case"], tuple(r["size"]), r["precision"]): r for r in results}
    rows = []
    for r in results:
        key = (r["case"], tuple(r["size"]))
        if key not in rows:
            rows.append(key)
    notes: List[str] = []
    for name, size in rows:
        found = [by_key.get((name, size, p)) for p in precisions]
        params = next((r["trainable_params"] for r in found if r and "trainable_params" in r), None)
        cells = [CASES[name].description if name in CASES else name, size_text(size), _fmt(params, ",")]
        for r in found:
            cells += _cells(r, notes)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- [{i}] {note}" for i, note in enumerate(notes, 1)]
    missing = sorted({r["case"] for r in results if r.get("missing")})
    if missing:
        lines.append(f"- not registered in this tfreg, so not measured: {', '.join(missing)}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases", nargs="+", default=None, choices=list(CASES), help="default: " + " ".join(DEFAULT_CASES)
    )
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=None, help="e.g. 80x96x112 160x192x224")
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=PRECISIONS)
    parser.add_argument("--mixed-precision", action="store_true", help="same as --precisions float32 mixed_float16")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps after the first (default 3)")
    parser.add_argument("--repeat", type=int, default=None, help="timed inferences after the first (default 3)")
    parser.add_argument("--quick", action="store_true", help="80x96x112 unless --sizes, 2 steps, 1 inference")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per child before it is killed")
    parser.add_argument("--max-rss-gib", type=float, default=20.0, help="RSS at which a child is killed (GiB)")
    parser.add_argument("--backend", choices=("tensorflow", "jax"), help="KERAS_BACKEND of the children")
    parser.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    parser.add_argument("--case", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=parse_size, help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    steps = args.steps or (2 if args.quick else 3)
    repeat = args.repeat or (1 if args.quick else 3)
    import tfreg  # noqa: F401  before TensorFlow: importing tfreg picks TensorFlow's CPU kernels

    if args.case:
        emit = lambda result: print(json.dumps(result), flush=True)  # noqa: E731
        measure(args.case, args.size, args.precision, steps, repeat, emit=emit)
        return 0
    cases = args.cases or DEFAULT_CASES
    sizes = args.sizes or (SIZES[:1] if args.quick else SIZES)
    precisions = ["float32", "mixed_float16"] if args.mixed_precision else list(dict.fromkeys(args.precisions))
    results = []
    RESULTS.parent.mkdir(exist_ok=True)
    for size in sizes:
        for name in cases:
            for precision in precisions:
                reason = missing_backbone(CASES[name])
                print(f"{name} {size_text(size)} {precision} ...", file=sys.stderr, flush=True)
                if reason:
                    result = {
                        "case": name,
                        "size": list(size),
                        "precision": precision,
                        "error": reason,
                        "missing": True,
                    }
                else:
                    result = run_child(
                        name, size, precision, steps, repeat, args.timeout, args.max_rss_gib, args.backend
                    )
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
                RESULTS.write_text(json.dumps(results, indent=1))
    text = table(results, precisions)
    print(text)
    if args.write:
        write_block("bench_transformers", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
