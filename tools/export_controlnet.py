#!/usr/bin/env python3
"""Export a diffusers ControlNet, and the UNet that takes its residuals, in latentblend's ONNX layout.

Optimum does not export ControlNets, so latentblend defines the layout (docs/controlnet-onnx.md).
The names follow the layout that Microsoft Olive's Stable Diffusion ControlNet examples and
OnnxStack use, so the ControlNet's outputs and the UNet's extra inputs have the same names:

  <controlnet folder>/controlnet/model.onnx
      inputs   sample f32 [b,4,h,w], timestep f32 [] (a scalar, as Optimum's UNet),
               encoder_hidden_states f32 [b,s,D], controlnet_cond f32 [b,3,H,W] in [0,1],
               conditioning_scale f32 [], SDXL also text_embeds f32 [b,P], time_ids f32 [b,6]
      outputs  down_block_0_additional_residual .. down_block_{N-1}_additional_residual,
               mid_block_additional_residual
  <controlnet folder>/controlnet/config.json         the diffusers ControlNetModel config
  <controlnet folder>/latentblend-controlnet.json    what latentblend checks before any UNet call

  <model folder>/unet_controlnet/model.onnx
      inputs   the UNet's own (sample, timestep, encoder_hidden_states, SDXL text_embeds, time_ids)
               + down_block_N_additional_residual and mid_block_additional_residual (added to the
               skip connections and the mid block output, as diffusers' UNet2DConditionModel does)
      output   out_sample
  <model folder>/unet_controlnet/config.json          the UNet's config

Usage (the fixture tool's venv has everything: tools/fixtures/requirements.txt):
  python tools/export_controlnet.py controlnet --controlnet lllyasviel/sd-controlnet-canny --out DIR
  python tools/export_controlnet.py unet --base stable-diffusion-v1-5/stable-diffusion-v1-5 --into MODEL_ONNX_DIR
  (--fp16 for float16 weights and IO, for GPUs; --opset N; --subfolder unet for a pipeline repo)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

LAYOUT_FORMAT = "latentblend-controlnet"
LAYOUT_VERSION = 1
DEFAULT_OPSET = 18  # as Optimum's Stable Diffusion exports


def _is_sdxl(config) -> bool:
    return getattr(config, "addition_embed_type", None) == "text_time"


def residual_count(config) -> int:
    """Number of down-block residuals of a UNet/ControlNet config: conv_in, then every resnet of
    every down block and every downsampler (all blocks but the last)."""
    blocks = len(config.down_block_types)
    layers = config.layers_per_block
    per_block = [layers] * blocks if isinstance(layers, int) else list(layers)
    return 1 + sum(per_block) + (blocks - 1)


def residual_names(count: int) -> list[str]:
    return [f"down_block_{i}_additional_residual" for i in range(count)] + ["mid_block_additional_residual"]


class ControlNetExport(torch.nn.Module):
    """ControlNetModel.forward with flat ONNX-friendly inputs and outputs."""

    def __init__(self, controlnet, sdxl: bool):
        super().__init__()
        self.controlnet = controlnet
        self.sdxl = sdxl

    def forward(self, sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale,
                text_embeds=None, time_ids=None):
        added = {"text_embeds": text_embeds, "time_ids": time_ids} if self.sdxl else None
        down, mid = self.controlnet(
            sample, timestep, encoder_hidden_states=encoder_hidden_states, controlnet_cond=controlnet_cond,
            conditioning_scale=conditioning_scale, added_cond_kwargs=added, guess_mode=False, return_dict=False)
        return (*down, mid)


class UNetResidualExport(torch.nn.Module):
    """UNet2DConditionModel.forward taking the ControlNet residuals as separate inputs."""

    def __init__(self, unet, sdxl: bool, count: int):
        super().__init__()
        self.unet = unet
        self.sdxl = sdxl
        self.count = count

    def forward(self, sample, timestep, encoder_hidden_states, *rest):
        added = None
        if self.sdxl:
            added = {"text_embeds": rest[0], "time_ids": rest[1]}
            rest = rest[2:]
        down = list(rest[: self.count])
        mid = rest[self.count]
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added,
                         down_block_additional_residuals=down, mid_block_additional_residual=mid,
                         return_dict=False)[0]


def _dummy_conditioning(config, batch: int, dtype):
    """encoder_hidden_states (+ SDXL text_embeds, time_ids) shaped for `config`."""
    width = config.cross_attention_dim
    width = width if isinstance(width, int) else width[0]
    feeds = {"encoder_hidden_states": torch.randn(batch, 77, width, dtype=dtype)}
    if _is_sdxl(config):
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        feeds["text_embeds"] = torch.randn(batch, pooled, dtype=dtype)
        feeds["time_ids"] = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]] * batch, dtype=dtype)
    return feeds


def _check_no_external_data(path: Path) -> None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for init in model.graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            return  # large models (> 2 GB) legitimately use external data
    onnx.checker.check_model(str(path))


def compact_onnx_names(path: Path) -> None:
    """Renames every internal value, initializer and node of an ONNX file to a short name (inputs
    and outputs keep theirs) and drops doc strings. Same computation, about half the file for tiny
    models, whose long exporter names outweigh their weights; used for the committed fixtures."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    renamed: dict[str, str] = {}

    def short(name: str) -> str:
        if name == "" or name in keep:
            return name
        if name not in renamed:
            renamed[name] = f"t{len(renamed)}"
        return renamed[name]

    for init in graph.initializer:
        init.name = short(init.name)
        init.doc_string = ""
    for index, node in enumerate(graph.node):
        node.name = f"n{index}"
        node.doc_string = ""
        node.input[:] = [short(name) for name in node.input]
        node.output[:] = [short(name) for name in node.output]
        assert not any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute), "subgraphs are not renamed"
    for info in graph.value_info:
        info.name = short(info.name)
    graph.doc_string = ""
    model.doc_string = ""
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _export(module, args: tuple, path: Path, input_names, output_names, dynamic_axes, opset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False, do_constant_folding=True)


def _dynamic_axes(own: dict, sdxl: bool, residuals: list[str]) -> dict:
    """Dynamic batch, sequence and spatial axes of the inputs both exports share, `own` ones and the residuals."""
    dynamic = {
        "sample": {0: "batch_size", 2: "height", 3: "width"},
        "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
        **own,
    }
    if sdxl:
        dynamic["text_embeds"] = {0: "batch_size"}
        dynamic["time_ids"] = {0: "batch_size"}
    for name in residuals:
        dynamic[name] = {0: "batch_size", 2: f"{name}_height", 3: f"{name}_width"}
    return dynamic


def _export_fresh(module, args: list, folder: Path, input_names, output_names, dynamic_axes, opset: int, compact: bool) -> None:
    """Exports `module` to folder/model.onnx, replacing whatever the folder held, in one file (names compacted on request)."""
    if folder.exists():
        shutil.rmtree(folder)
    _export(module, tuple(args), folder / "model.onnx", input_names, output_names, dynamic_axes, opset)
    _check_no_external_data(folder / "model.onnx")
    if compact:
        compact_onnx_names(folder / "model.onnx")


def export_controlnet(controlnet, out_dir: Path, *, opset: int = DEFAULT_OPSET, fp16: bool = False,
                      source: str | None = None, vae_scale_factor: int = 8, compact: bool = False) -> dict:
    """Writes <out_dir>/controlnet/{model.onnx,config.json} and <out_dir>/latentblend-controlnet.json;
    returns the description written to the JSON."""
    config = controlnet.config
    sdxl = _is_sdxl(config)
    dtype = torch.float16 if fp16 else torch.float32
    controlnet = controlnet.to(dtype=dtype).eval()
    count = residual_count(config)
    module = ControlNetExport(controlnet, sdxl).eval()
    size = 8
    cond = _dummy_conditioning(config, 2, dtype)
    args = [torch.randn(2, config.in_channels, size, size, dtype=dtype), torch.tensor(999.0, dtype=dtype),
            cond["encoder_hidden_states"], torch.rand(2, config.conditioning_channels, size * vae_scale_factor,
                                                       size * vae_scale_factor, dtype=dtype),
            torch.tensor(1.0, dtype=dtype)]
    inputs = ["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale"]
    if sdxl:
        args += [cond["text_embeds"], cond["time_ids"]]
        inputs += ["text_embeds", "time_ids"]
    outputs = residual_names(count)
    with torch.no_grad():
        got = module(*args)
    assert len(got) == count + 1, f"ControlNet gave {len(got)} outputs, expected {count + 1}"
    dynamic = _dynamic_axes({"controlnet_cond": {0: "batch_size", 2: "image_height", 3: "image_width"}}, sdxl, outputs)
    folder = out_dir / "controlnet"
    _export_fresh(module, args, folder, inputs, outputs, dynamic, opset, compact)
    controlnet.save_config(str(folder))
    channels = [int(t.shape[1]) for t in got]
    downscale = [size // int(t.shape[2]) for t in got]
    description = {
        "format": LAYOUT_FORMAT,
        "version": LAYOUT_VERSION,
        "family": "sdxl" if sdxl else "sd",
        "source": source,
        "dtype": "float16" if fp16 else "float32",
        "cross_attention_dim": config.cross_attention_dim,
        "conditioning_channels": config.conditioning_channels,
        "channel_order": config.controlnet_conditioning_channel_order,
        "global_pool_conditions": bool(config.global_pool_conditions),
        "control_image": "RGB in [0, 1], resized to the output size (diffusers' control image processor, "
                         "do_normalize=False); channel_order 'bgr' is flipped inside the model",
        "residuals": [{"name": n, "channels": c, "downscale": d} for n, c, d in zip(outputs, channels, downscale)],
        "unet_folder": "unet_controlnet",
        "exporter": f"tools/export_controlnet.py (torch {torch.__version__}, opset {opset})",
    }
    (out_dir / "latentblend-controlnet.json").write_text(json.dumps(description, indent=1) + "\n", encoding="utf-8")
    return description


def export_unet_with_residuals(unet, model_dir: Path, *, opset: int = DEFAULT_OPSET, fp16: bool = False,
                               compact: bool = False) -> dict:
    """Writes <model_dir>/unet_controlnet/{model.onnx,config.json}: the UNet with the residual inputs."""
    config = unet.config
    sdxl = _is_sdxl(config)
    dtype = torch.float16 if fp16 else torch.float32
    unet = unet.to(dtype=dtype).eval()
    count = residual_count(config)
    size = 8
    cond = _dummy_conditioning(config, 2, dtype)
    sample = torch.randn(2, config.in_channels, size, size, dtype=dtype)
    # Residual shapes from the UNet's own down path (one forward pass, hooks on the blocks).
    shapes: list[tuple[int, int, int]] = []
    hooks = [unet.conv_in.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape[1:])))]
    for block in unet.down_blocks:
        hooks.append(block.register_forward_hook(
            lambda _m, _i, o: shapes.extend(tuple(t.shape[1:]) for t in o[1])))
    mid_shape: list[tuple[int, int, int]] = []
    hooks.append(unet.mid_block.register_forward_hook(lambda _m, _i, o: mid_shape.append(tuple(o.shape[1:]))))
    added = {"text_embeds": cond["text_embeds"], "time_ids": cond["time_ids"]} if sdxl else None
    with torch.no_grad():
        unet(sample, torch.tensor(999.0, dtype=dtype), encoder_hidden_states=cond["encoder_hidden_states"],
             added_cond_kwargs=added)
    for h in hooks:
        h.remove()
    assert len(shapes) == count, f"UNet has {len(shapes)} down residuals, expected {count}"
    residuals = [torch.randn(2, *s, dtype=dtype) * 0.1 for s in shapes + mid_shape]
    module = UNetResidualExport(unet, sdxl, count).eval()
    args = [sample, torch.tensor(999.0, dtype=dtype), cond["encoder_hidden_states"]]
    inputs = ["sample", "timestep", "encoder_hidden_states"]
    if sdxl:
        args += [cond["text_embeds"], cond["time_ids"]]
        inputs += ["text_embeds", "time_ids"]
    names = residual_names(count)
    args += residuals
    inputs += names
    dynamic = _dynamic_axes({"out_sample": {0: "batch_size", 2: "height", 3: "width"}}, sdxl, names)
    folder = model_dir / "unet_controlnet"
    _export_fresh(module, args, folder, inputs, ["out_sample"], dynamic, opset, compact)
    unet.save_config(str(folder))
    return {"inputs": inputs, "residual_shapes_at_8x8": [list(s) for s in shapes + mid_shape]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    c = sub.add_parser("controlnet", help="export a ControlNet to <out>/controlnet/")
    c.add_argument("--controlnet", required=True, help="Hub id or local diffusers ControlNetModel folder")
    c.add_argument("--out", required=True, help="output folder (created)")
    c.add_argument("--subfolder", default=None)
    u = sub.add_parser("unet", help="export a base model's UNet with residual inputs to <into>/unet_controlnet/")
    u.add_argument("--base", required=True, help="Hub id or local diffusers pipeline folder")
    u.add_argument("--into", required=True, help="the model's ONNX folder (Optimum layout) to add unet_controlnet/ to")
    u.add_argument("--subfolder", default="unet")
    for p in (c, u):
        p.add_argument("--fp16", action="store_true", help="float16 weights and IO (GPU)")
        p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    args = ap.parse_args()
    from diffusers import ControlNetModel, UNet2DConditionModel

    if args.what == "controlnet":
        kw = {"subfolder": args.subfolder} if args.subfolder else {}
        model = ControlNetModel.from_pretrained(args.controlnet, **kw)
        desc = export_controlnet(model, Path(args.out), opset=args.opset, fp16=args.fp16, source=args.controlnet)
        print(json.dumps({k: desc[k] for k in ("family", "dtype", "cross_attention_dim")}))
    else:
        into = Path(args.into)
        if not (into / "unet" / "model.onnx").exists():
            print(f"{into} has no unet/model.onnx: export the base model with Optimum first "
                  f"(optimum-cli export onnx --model {args.base} {into})", file=sys.stderr)
            return 1
        model = UNet2DConditionModel.from_pretrained(args.base, subfolder=args.subfolder)
        info = export_unet_with_residuals(model, into, opset=args.opset, fp16=args.fp16)
        print(json.dumps({"inputs": info["inputs"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
