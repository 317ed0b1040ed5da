#!/usr/bin/env python3
"""Export an IP-Adapter in latentblend's ONNX layout (docs/ip-adapter-onnx.md).

An IP-Adapter changes the UNet (extra key/value projections in every cross-attention and an image
projection), so its folder holds a UNet exported with the adapter loaded, plus the CLIP vision
encoder that turns a picture into image embeddings:

  <ip-adapter folder>/image_encoder/model.onnx
      input    pixel_values f32 [b,3,S,S] (CLIPImageProcessor's output)
      outputs  image_embeds f32 [b,E] (plain IP-Adapter), penultimate_hidden_states f32 [b,T,W] ("plus")
  <ip-adapter folder>/image_encoder/config.json, preprocessor_config.json
  <ip-adapter folder>/unet/model.onnx
      inputs   the base UNet's (sample, timestep, encoder_hidden_states, SDXL text_embeds, time_ids)
               + image_embeds f32 [b,1,E] (or [b,1,T,W] for "plus", T fixed by the encoder) + ip_adapter_scale f32 [b]
      output   out_sample
  <ip-adapter folder>/unet/config.json
  <ip-adapter folder>/latentblend-ip-adapter.json   family, variant, embedding shape, base model

Usage (the fixture tool's venv, tools/fixtures/requirements.txt):
  python tools/export_ip_adapter.py --base stable-diffusion-v1-5/stable-diffusion-v1-5 \\
      --ip-adapter h94/IP-Adapter --subfolder models --weight-name ip-adapter_sd15.safetensors --out DIR
  (--weight-name ip-adapter-plus_sd15.safetensors for the "plus" variant)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from export_controlnet import compact_onnx_names

LAYOUT_FORMAT = "latentblend-ip-adapter"
LAYOUT_VERSION = 1
DEFAULT_OPSET = 18


class ImageEncoderExport(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, pixel_values):
        out = self.encoder(pixel_values, output_hidden_states=True)
        return out.image_embeds, out.hidden_states[-2]


class _RowScale:
    """Stands in for the float processor.scale: never equal to 0 (diffusers skips the image branch
    for a scale of 0; here a row's 0 just multiplies it away), multiplies as a [b,1,1] tensor."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __eq__(self, other):
        return False

    __hash__ = None

    def __mul__(self, other):
        return self.tensor * other

    __rmul__ = __mul__


class IpUNetExport(torch.nn.Module):
    """The UNet with IP-Adapter attention; the adapter scale is an input (one value per batch row)."""

    def __init__(self, unet, sdxl: bool):
        super().__init__()
        self.unet = unet
        self.sdxl = sdxl
        self.processors = [p for p in unet.attn_processors.values() if hasattr(p, "to_k_ip")]
        assert self.processors, "no IP-Adapter attention processors: load the IP-Adapter first"

    def forward(self, sample, timestep, encoder_hidden_states, *rest):
        added = {}
        if self.sdxl:
            added = {"text_embeds": rest[0], "time_ids": rest[1]}
            rest = rest[2:]
        image_embeds, scale = rest
        # diffusers multiplies each cross-attention's image branch by processor.scale; a tensor of
        # shape [b,1,1] there makes it per row and an input of the graph.
        for p in self.processors:
            p.scale = [_RowScale(scale.reshape(-1, 1, 1))]
        added["image_embeds"] = [image_embeds]
        return self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states, added_cond_kwargs=added,
                         return_dict=False)[0]


def _export(module, args, path: Path, inputs, outputs, dynamic, opset: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(module, tuple(args), str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dynamic, opset_version=opset, dynamo=False, do_constant_folding=True)


def export_image_encoder(encoder, feature_extractor, out_dir: Path, *, opset: int = DEFAULT_OPSET,
                         compact: bool = False) -> None:
    folder = out_dir / "image_encoder"
    if folder.exists():
        shutil.rmtree(folder)
    size = encoder.config.image_size
    pixels = torch.randn(2, 3, size, size)
    _export(ImageEncoderExport(encoder.eval()), [pixels], folder / "model.onnx", ["pixel_values"],
            ["image_embeds", "penultimate_hidden_states"],
            {"pixel_values": {0: "batch_size"}, "image_embeds": {0: "batch_size"},
             "penultimate_hidden_states": {0: "batch_size"}}, opset)
    if compact:
        compact_onnx_names(folder / "model.onnx")
    encoder.config.to_json_file(str(folder / "config.json"))
    feature_extractor.save_pretrained(str(folder))


def image_tokens(encoder_config) -> int:
    """Tokens in the CLIP vision encoder's hidden states: one per patch plus the class token."""
    return (encoder_config.image_size // encoder_config.patch_size) ** 2 + 1


def export_ip_unet(unet, out_dir: Path, *, opset: int = DEFAULT_OPSET, source: str | None = None,
                   compact: bool = False, tokens: int | None = None) -> dict:
    """Exports a UNet that has an IP-Adapter loaded (`pipe.load_ip_adapter`) to <out_dir>/unet/.

    `tokens`: the image encoder's hidden-state length (`image_tokens`), needed for "plus" adapters."""
    config = unet.config
    sdxl = config.addition_embed_type == "text_time"
    proj = unet.encoder_hid_proj.image_projection_layers
    assert len(proj) == 1, "one IP-Adapter at a time"
    layer = proj[0]
    plain = type(layer).__name__ == "ImageProjection"
    module = IpUNetExport(unet.eval(), sdxl).eval()
    width = config.cross_attention_dim
    args = [torch.randn(2, config.in_channels, 8, 8), torch.tensor(999.0), torch.randn(2, 77, width)]
    inputs = ["sample", "timestep", "encoder_hidden_states"]
    dynamic = {"sample": {0: "batch_size", 2: "height", 3: "width"},
               "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"},
               "image_embeds": {0: "batch_size"}, "ip_adapter_scale": {0: "batch_size"},
               "out_sample": {0: "batch_size", 2: "height", 3: "width"}}
    if sdxl:
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        args += [torch.randn(2, pooled), torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)]
        inputs += ["text_embeds", "time_ids"]
        dynamic["text_embeds"] = {0: "batch_size"}
        dynamic["time_ids"] = {0: "batch_size"}
    if plain:
        embed_shape = [1, layer.image_embeds.in_features]
    elif type(layer).__name__ == "IPAdapterPlusImageProjection":
        # the Resampler takes the encoder's penultimate hidden states [T,W] per image
        assert tokens is not None, "plus IP-Adapters need the image encoder's token count"
        embed_shape = [1, tokens, layer.proj_in.in_features]
    else:
        raise NotImplementedError(f"IP-Adapter projection {type(layer).__name__} is not exported (plain and plus only)")
    args += [torch.randn(2, *embed_shape), torch.tensor([0.7, 0.3])]
    inputs += ["image_embeds", "ip_adapter_scale"]
    folder = out_dir / "unet"
    if folder.exists():
        shutil.rmtree(folder)
    _export(module, args, folder / "model.onnx", inputs, ["out_sample"], dynamic, opset)
    if compact:
        compact_onnx_names(folder / "model.onnx")
    unet.save_config(str(folder))
    description = {
        "format": LAYOUT_FORMAT,
        "version": LAYOUT_VERSION,
        "family": "sdxl" if sdxl else "sd",
        "variant": "plain" if plain else "plus",
        "source": source,
        "cross_attention_dim": width,
        "image_embeds_shape": embed_shape,
        "image_encoder_output": "image_embeds" if plain else "penultimate_hidden_states",
        "negative_image_embeds": "zeros" if plain else "image encoder of all-zero pixel_values",
        "exporter": f"tools/export_ip_adapter.py (torch {torch.__version__}, opset {opset})",
    }
    (out_dir / "latentblend-ip-adapter.json").write_text(json.dumps(description, indent=1) + "\n", encoding="utf-8")
    return description


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="the base model's diffusers repo or folder")
    ap.add_argument("--ip-adapter", required=True, help="IP-Adapter repo or folder (e.g. h94/IP-Adapter)")
    ap.add_argument("--subfolder", default="models")
    ap.add_argument("--weight-name", required=True, help="e.g. ip-adapter_sd15.safetensors")
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    args = ap.parse_args()
    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(args.base)
    pipe.load_ip_adapter(args.ip_adapter, subfolder=args.subfolder, weight_name=args.weight_name)
    out = Path(args.out)
    export_image_encoder(pipe.image_encoder, pipe.feature_extractor, out, opset=args.opset)
    desc = export_ip_unet(pipe.unet, out, opset=args.opset, source=f"{args.ip_adapter}/{args.subfolder}/{args.weight_name}",
                          tokens=image_tokens(pipe.image_encoder.config))
    print(json.dumps({k: desc[k] for k in ("family", "variant", "image_embeds_shape")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
