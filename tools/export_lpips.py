#!/usr/bin/env python3
"""Usage: python tools/export_lpips.py ~/.cache/latentblend/lpips-alex.onnx
       python tools/export_lpips.py --two-file FOLDER [--fixed-size 400] [--weights-from ONE_FILE.onnx]

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

--two-file writes FOLDER/lpips_feature.onnx and FOLDER/lpips_diff.onnx in the two-file form of
deepghs/imgutils-models (folder lpips/), which latentblend also reads:

    lpips_feature.onnx  input   input                 float32 [batch, 3, height, width], RGB in [0, 1]
                        outputs feat_0 ... feat_4     AlexNet's five ReLU outputs after LPIPS' scaling
                                                      layer, each unit-normalised over channels
    lpips_diff.onnx     inputs  feat_x_0 ... feat_x_4, feat_y_0 ... feat_y_4  (the two images' features)
                        output  output                float32 [batch], the LPIPS distance

imgutils' export fixes height and width at 400 px; --fixed-size N does the same here (default:
dynamic). --weights-from takes the weights (and the layer widths) from a one-file export of this
tool instead, e.g. fixtures/lpips/tiny-lpips.onnx, so both forms can be compared on one network.
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


def lpips_from_onnx(path: Path):
    """lpips.LPIPS (AlexNet layout, v0.1) with every weight, and the layer widths, read from a one-file export."""
    import numpy as np
    import onnx
    import torch
    import lpips
    from onnx import numpy_helper

    weights = {}
    for tensor in onnx.load(str(path)).graph.initializer:
        name = tensor.name[2:] if tensor.name.startswith("m.") else tensor.name
        weights[name] = torch.from_numpy(np.array(numpy_helper.to_array(tensor)))
    metric = lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)
    net = metric.net
    # torchvision's AlexNet feature indices: conv at 0 (11x11/4), 3 (5x5), 6, 8, 10 (3x3).
    layers = [("slice1", "0", 11, 4, 2), ("slice2", "3", 5, 1, 2), ("slice3", "6", 3, 1, 1), ("slice4", "8", 3, 1, 1),
              ("slice5", "10", 3, 1, 1)]
    widths = []
    for slice_name, index, kernel, stride, padding in layers:
        weight = weights[f"net.{slice_name}.{index}.weight"]
        conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=kernel, stride=stride, padding=padding)
        getattr(net, slice_name)._modules[index] = conv
        widths.append(weight.shape[0])
    lins = []
    for k, width in enumerate(widths):
        lin = lpips.NetLinLayer(width, use_dropout=True)
        lins.append(lin)
        setattr(metric, f"lin{k}", lin)
    metric.lins = torch.nn.ModuleList(lins)
    metric.chns = widths
    # The ModuleList `lins` holds the same layers as lin0..lin4; the export names them linK.
    state = {}
    for key in metric.state_dict():
        source = f"lin{key[len('lins.'):]}" if key.startswith("lins.") else key
        if source not in weights:
            raise SystemExit(f"{path}: no weight {source} (is it a one-file LPIPS export of this tool?)")
        state[key] = weights[source]
    metric.load_state_dict(state, strict=True)
    metric.eval()
    for parameter in metric.parameters():
        parameter.requires_grad_(False)
    return metric


class FeaturePart:
    """Builders of the two halves of the two-file form (see the module docstring)."""

    @staticmethod
    def features(metric):
        import torch
        import lpips

        class Features(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, image):
                # [0, 1] -> [-1, 1], then LPIPS' own scaling and the trunk; each layer unit-normalised.
                scaled = self.inner.scaling_layer(image * 2 - 1)
                return tuple(lpips.normalize_tensor(layer) for layer in self.inner.net.forward(scaled))

        return Features(metric).eval()

    @staticmethod
    def difference(metric):
        import torch

        class Difference(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, *features):
                half = len(features) // 2
                total = 0
                for k in range(half):
                    squared = (features[k] - features[half + k]) ** 2
                    total = total + self.inner.lins[k](squared).mean(dim=[2, 3], keepdim=True)
                return total.reshape(-1)

        return Difference(metric).eval()


def export_two_file(metric, folder: Path, opset: int, size: int, fixed: bool) -> None:
    import inspect as _inspect
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    features = FeaturePart.features(metric)
    difference = FeaturePart.difference(metric)
    example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    extra = {"dynamo": False} if "dynamo" in _inspect.signature(torch.onnx.export).parameters else {}
    feature_names = [f"feat_{k}" for k in range(5)]
    spatial = {} if fixed else {2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            features, (example,), str(folder / "lpips_feature.onnx"), input_names=["input"], output_names=feature_names,
            dynamic_axes={"input": {0: "batch", **spatial}, **{name: {0: "batch", **({} if fixed else {2: f"{name}_h", 3: f"{name}_w"})}
                                                                 for name in feature_names}},
            opset_version=opset, do_constant_folding=True, **extra)
        example_features = features(example)
        inputs = [f"feat_x_{k}" for k in range(5)] + [f"feat_y_{k}" for k in range(5)]
        axes = {}
        for k in range(5):
            for side in ("x", "y"):
                axes[f"feat_{side}_{k}"] = {0: "batch", **({} if fixed else {2: f"h{k}", 3: f"w{k}"})}
        torch.onnx.export(
            difference, tuple(example_features) + tuple(example_features), str(folder / "lpips_diff.onnx"),
            input_names=inputs, output_names=["output"], dynamic_axes={**axes, "output": {0: "batch"}},
            opset_version=opset, do_constant_folding=True, **extra)


def check_two_file(metric, folder: Path, sizes) -> float:
    """Largest |two-file onnxruntime - torch LPIPS| over random pairs (inputs in [-1, 1] for torch)."""
    import numpy as np
    import torch
    import onnxruntime

    feature = onnxruntime.InferenceSession(str(folder / "lpips_feature.onnx"), providers=["CPUExecutionProvider"])
    diff = onnxruntime.InferenceSession(str(folder / "lpips_diff.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch, height, width in sizes:
        img0 = rng.uniform(0, 1, (batch, 3, height, width)).astype(np.float32)
        img1 = np.clip(img0 + rng.normal(0, 0.15, img0.shape), 0, 1).astype(np.float32)
        with torch.no_grad():
            expected = metric(torch.from_numpy(img0 * 2 - 1), torch.from_numpy(img1 * 2 - 1), normalize=False).reshape(-1).numpy()
        fx = feature.run(None, {"input": img0})
        fy = feature.run(None, {"input": img1})
        feeds = {**{f"feat_x_{k}": fx[k] for k in range(5)}, **{f"feat_y_{k}": fy[k] for k in range(5)}}
        (got,) = diff.run(["output"], feeds)
        if got.shape != (batch,):
            raise SystemExit(f"export check failed: output shape {got.shape}, expected {(batch,)}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


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
    parser.add_argument("output", type=Path,
                        help="the .onnx file to write, e.g. ~/.cache/latentblend/lpips-alex.onnx (with --two-file: a folder)")
    parser.add_argument("--two-file", action="store_true",
                        help="write lpips_feature.onnx + lpips_diff.onnx into the folder OUTPUT (imgutils' form)")
    parser.add_argument("--fixed-size", type=int, default=None,
                        help="with --two-file: fix height and width at this many px, as imgutils does (400)")
    parser.add_argument("--weights-from", type=Path, default=None,
                        help="take the network from a one-file export of this tool (e.g. fixtures/lpips/tiny-lpips.onnx)")
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
    if args.fixed_size is not None and (not args.two_file or args.fixed_size < 32):
        parser.error("--fixed-size goes with --two-file and must be at least 32")
    if args.two_file:
        import lpips

        if args.weights_from is not None:
            metric = lpips_from_onnx(args.weights_from)
        else:
            if args.random_trunk:
                import torch

                torch.manual_seed(0)
            metric = lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=args.random_trunk, verbose=False).eval()
        size = args.fixed_size or args.size
        export_two_file(metric, output, args.opset, size, fixed=args.fixed_size is not None)
        total = sum((output / name).stat().st_size for name in ("lpips_feature.onnx", "lpips_diff.onnx"))
        print(f"wrote {output}/lpips_feature.onnx and lpips_diff.onnx ({total / 1e6:.2f} MB)")
        if not args.no_check:
            sizes = [(1, size, size), (2, size, size)] if args.fixed_size else [(1, 64, 64), (2, 96, 128), (3, 256, 192)]
            worst = check_two_file(metric, output, sizes)
            print(f"onnxruntime (two files) vs torch LPIPS: largest difference {worst:.2e}")
            if worst > 1e-4:
                print("export check failed: onnxruntime and torch disagree", file=sys.stderr)
                return 1
        return 0
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
