#!/usr/bin/env python3
"""Usage: python tools/export_lpips.py ~/.cache/latentblend/lpips-alex.onnx

Exports the LPIPS perceptual distance (Zhang et al. 2018; AlexNet trunk, linear layers v0.1, as
the `lpips` PyPI package ships them) to the ONNX layout latentblend's LpipsMetric reads:

    inputs   img0, img1   float32 [batch, 3, height, width], RGB in [-1, 1]
    output   distance     float32 [batch, 1, 1, 1]  (spatially averaged; 0 for identical images)

batch, height and width are dynamic (height and width >= 32 px), opset 17.

Needs: pip install lpips torch onnx   (onnxruntime too, optionally, for the self-check).
The first run downloads torchvision's ImageNet AlexNet weights (about 230 MB) into torch's cache;
the LPIPS linear weights come with the lpips package. latentblend finds the model at
~/.cache/latentblend/lpips-alex.onnx, or wherever LATENTBLEND_LPIPS points.

--random-trunk keeps the AlexNet trunk randomly initialised (no download): only for testing that
the export works, the resulting distances are NOT perceptual.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import warnings
from pathlib import Path


def build_model(random_trunk: bool):
    """lpips.LPIPS (AlexNet, v0.1) wrapped so that forward(img0, img1) takes inputs in [-1, 1]."""
    import torch
    import lpips

    if random_trunk:
        torch.manual_seed(0)
    # pretrained=True: the learned v0.1 linear weights (shipped in the package);
    # pnet_rand=False: ImageNet AlexNet weights for the trunk (downloaded by torchvision).
    metric = lpips.LPIPS(pretrained=True, net="alex", version="0.1", lpips=True, spatial=False,
                         pnet_rand=random_trunk, verbose=False)
    metric.eval()
    for parameter in metric.parameters():
        parameter.requires_grad_(False)

    class TwoImages(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
            # normalize=False: the inputs are already in [-1, 1]; LPIPS' ScalingLayer is inside.
            return self.inner(img0, img1, normalize=False)

    return TwoImages(metric).eval()


def export(model, output: Path, opset: int, size: int) -> None:
    import torch

    example = torch.zeros(1, 3, size, size)
    image_axes = {0: "batch", 2: "height", 3: "width"}
    kwargs = dict(
        input_names=["img0", "img1"],
        output_names=["distance"],
        dynamic_axes={"img0": image_axes, "img1": image_axes, "distance": {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
    )
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: dynamic_axes as given
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(model, (example, example), str(output), **kwargs)


def self_check(model, output: Path) -> float:
    """Largest |onnxruntime - torch| distance over a few random pairs of several sizes and batches."""
    import numpy as np
    import torch

    try:
        import onnx

        onnx.checker.check_model(str(output))
    except ImportError:
        pass
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime not installed: skipped comparing the export with torch.")
        return 0.0
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, height, width in [(1, 64, 64), (2, 96, 128), (3, 256, 192)]:
        img0 = rng.uniform(-1, 1, (batch, 3, height, width)).astype(np.float32)
        img1 = np.clip(img0 + rng.normal(0, 0.3, img0.shape), -1, 1).astype(np.float32)
        with torch.no_grad():
            expected = model(torch.from_numpy(img0), torch.from_numpy(img1)).numpy()
        (got,) = session.run(["distance"], {"img0": img0, "img1": img1})
        if got.shape != (batch, 1, 1, 1):
            raise SystemExit(f"export check failed: output shape {got.shape}, expected {(batch, 1, 1, 1)}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path, help="the .onnx file to write, e.g. ~/.cache/latentblend/lpips-alex.onnx")
    parser.add_argument("--random-trunk", action="store_true",
                        help="random AlexNet weights, no download (testing the export only; not perceptual)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--size", type=int, default=64, help="side of the example input used for tracing, px (default 64)")
    parser.add_argument("--no-check", action="store_true", help="skip comparing onnxruntime with torch after export")
    args = parser.parse_args()
    if args.size < 32:
        parser.error("--size must be at least 32 (AlexNet's smallest input)")

    warnings.filterwarnings("ignore")
    output = args.output.expanduser()
    model = build_model(args.random_trunk)
    export(model, output, args.opset, args.size)
    print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")
    if not args.no_check:
        worst = self_check(model, output)
        print(f"onnxruntime vs torch: largest difference {worst:.2e}")
        if worst > 1e-4:
            print("export check failed: onnxruntime and torch disagree", file=sys.stderr)
            return 1
    if args.random_trunk:
        print("note: random AlexNet trunk (--random-trunk); these distances are not perceptual.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
