#!/usr/bin/env python3
"""Record Hugging Face diffusers' own scheduler behaviour as golden JSON for tests/schedulers.test.ts.

Regenerate (from the repository root, in a Python environment with diffusers, torch and numpy;
the committed files were made with diffusers 0.39.0, torch 2.14.1, numpy 2.4.6):

    /work/venvs/fx/bin/python tools/scheduler_goldens.py            # writes tests/golden/schedulers/
    /work/venvs/fx/bin/python tools/scheduler_goldens.py --out DIR  # elsewhere

Output:
- <SchedulerClass>.json: full denoising loops on a tiny 2x3x3 tensor. Per case: the config, the
  step count, `timesteps`, `init_noise_sigma`, the start sample (unit Gaussian from numpy times
  init_noise_sigma) and per step the scaled model input, a fake "model output" (numpy Gaussian,
  independent of the sample), the step noise the scheduler drew (our numpy stream, patched in
  place of diffusers' `randn_tensor`; null when none was drawn), the resulting prev_sample and,
  where diffusers returns it, the predicted x0.
- timesteps.json: timesteps and init_noise_sigma over many step counts, spacings and offsets.

Floats are written as the shortest decimal that round-trips their float32 value.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import diffusers

SHAPE = (2, 3, 3)

SD = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000}

# stabilityai/sdxl-turbo scheduler/scheduler_config.json
SDXL_TURBO = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.24.0.dev0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
    "trained_betas": None,
    "use_karras_sigmas": False,
}
# stabilityai/sd-turbo: the same fields with the (non-ancestral) Euler scheduler.
SD_TURBO = {**SDXL_TURBO, "_class_name": "EulerDiscreteScheduler"}
# stabilityai/stable-diffusion-xl-base-1.0
SDXL = {**SDXL_TURBO, "_class_name": "EulerDiscreteScheduler", "timestep_spacing": "leading"}
# runwayml/stable-diffusion-v1-5 (PNDM)
SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}
# SimianLuo/LCM_Dreamshaper_v7-style LCM config
LCM = {
    **SD,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "original_inference_steps": 50,
    "prediction_type": "epsilon",
    "rescale_betas_zero_snr": False,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "thresholding": False,
    "timestep_scaling": 10.0,
    "timestep_spacing": "leading",
}
ZERO_SNR_V = {**SD, "rescale_betas_zero_snr": True, "prediction_type": "v_prediction", "timestep_spacing": "trailing"}
SMALL_TRAINED = {"num_train_timesteps": 100, "trained_betas": [float(b) for b in np.linspace(0.001, 0.05, 100)]}

E, EA, DDIM, LCMS, DPM, PNDM = (
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DDIMScheduler",
    "LCMScheduler",
    "DPMSolverMultistepScheduler",
    "PNDMScheduler",
)

# (class, case name, config, steps, extra) with extra: eta (DDIM), begin (start step index).
CASES = [
    (E, "sd-turbo 1 step", SD_TURBO, 1, {}),
    (E, "sd-turbo 4 steps", SD_TURBO, 4, {}),
    (E, "sdxl leading offset 1, 30 steps", SDXL, 30, {}),
    (E, "leading offset 0, 25 steps", {**SD, "timestep_spacing": "leading"}, 25, {}),
    (E, "linspace 25 steps", {**SD, "timestep_spacing": "linspace"}, 25, {}),
    (E, "linspace 1 step", {**SD, "timestep_spacing": "linspace"}, 1, {}),
    (E, "trailing v_prediction 10 steps", {**SD, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 10, {}),
    (E, "all defaults (linear betas) 20 steps", {}, 20, {}),
    (E, "karras leading offset 1, 25 steps", {**SDXL, "use_karras_sigmas": True}, 25, {}),
    (E, "karras linspace sigma_max 10 steps", {**SD, "use_karras_sigmas": True, "sigma_max": 10.0}, 10, {}),
    (E, "final sigma_min 10 steps", {**SD, "final_sigmas_type": "sigma_min"}, 10, {}),
    (E, "continuous timesteps v_prediction 8 steps", {**SD, "timestep_type": "continuous", "prediction_type": "v_prediction"}, 8, {}),
    (E, "log_linear interpolation 10 steps", {**SD, "interpolation_type": "log_linear"}, 10, {}),
    (E, "zero snr trailing v_prediction 8 steps", ZERO_SNR_V, 8, {}),
    (E, "squaredcos_cap_v2 linspace 12 steps", {"beta_schedule": "squaredcos_cap_v2"}, 12, {}),
    (E, "sample prediction 6 steps", {**SD, "prediction_type": "sample"}, 6, {}),
    (E, "trained betas T=100 leading 7 steps", {**SMALL_TRAINED, "timestep_spacing": "leading"}, 7, {}),
    (E, "start at step 5 of 12", {**SD, "timestep_spacing": "trailing"}, 12, {"begin": 5}),
    (EA, "sdxl-turbo 1 step", SDXL_TURBO, 1, {}),
    (EA, "sdxl-turbo 4 steps", SDXL_TURBO, 4, {}),
    (EA, "sdxl leading offset 1, 30 steps", {**SDXL_TURBO, "timestep_spacing": "leading"}, 30, {}),
    (EA, "linspace v_prediction 25 steps", {**SD, "prediction_type": "v_prediction"}, 25, {}),
    (EA, "zero snr trailing v_prediction 6 steps", ZERO_SNR_V, 6, {}),
    (EA, "all defaults (linear betas) 10 steps", {}, 10, {}),
    (EA, "trailing offset 0, 3 steps", {**SD, "timestep_spacing": "trailing"}, 3, {}),
    (DDIM, "sd leading offset 1, 30 steps, eta 0", {**SD15, "clip_sample": False}, 30, {"eta": 0.0}),
    (DDIM, "sd leading offset 1, 30 steps, eta 0.5", {**SD15, "clip_sample": False}, 30, {"eta": 0.5}),
    (DDIM, "all defaults (clip_sample) 20 steps", {}, 20, {"eta": 0.0}),
    (DDIM, "trailing 4 steps", {**SD, "timestep_spacing": "trailing", "clip_sample": False}, 4, {"eta": 0.0}),
    (DDIM, "linspace 10 steps eta 0.5", {**SD, "timestep_spacing": "linspace", "clip_sample": False}, 10, {"eta": 0.5}),
    (DDIM, "zero snr trailing v_prediction 10 steps", {**ZERO_SNR_V, "clip_sample": False, "set_alpha_to_one": False}, 10, {"eta": 0.0}),
    (DDIM, "sample prediction clip range 2, 5 steps", {**SD, "prediction_type": "sample", "clip_sample_range": 2.0}, 5, {"eta": 0.0}),
    (DDIM, "1 step", {**SD, "clip_sample": False}, 1, {"eta": 0.0}),
    (LCMS, "lcm 1 step", LCM, 1, {}),
    (LCMS, "lcm 2 steps", LCM, 2, {}),
    (LCMS, "lcm 4 steps", LCM, 4, {}),
    (LCMS, "lcm 8 steps", LCM, 8, {}),
    (LCMS, "v_prediction 4 steps", {**LCM, "prediction_type": "v_prediction"}, 4, {}),
    (LCMS, "clip_sample 4 steps", {**LCM, "clip_sample": True}, 4, {}),
    (LCMS, "original 25, 6 steps, set_alpha_to_one false", {**LCM, "original_inference_steps": 25, "set_alpha_to_one": False}, 6, {}),
    (DPM, "2M linspace 25 steps", SD, 25, {}),
    (DPM, "2M leading offset 1, 20 steps", {**SD15}, 20, {}),
    (DPM, "2M trailing 4 steps", {**SD, "timestep_spacing": "trailing"}, 4, {}),
    (DPM, "order 1, 10 steps", {**SD, "solver_order": 1}, 10, {}),
    (DPM, "2M no lower_order_final, final sigma_min, 10 steps", {**SD, "lower_order_final": False, "final_sigmas_type": "sigma_min"}, 10, {}),
    (DPM, "2M lower_order_final, final sigma_min, 10 steps", {**SD, "lower_order_final": True, "final_sigmas_type": "sigma_min"}, 10, {}),
    (DPM, "2M euler_at_final, final sigma_min, 20 steps", {**SD, "euler_at_final": True, "final_sigmas_type": "sigma_min"}, 20, {}),
    (DPM, "2M no lower_order_final, 8 steps", {**SD, "lower_order_final": False}, 8, {}),
    (DPM, "2M karras 25 steps", {**SD, "use_karras_sigmas": True}, 25, {}),
    (DPM, "2M karras squaredcos 12 steps", {"beta_schedule": "squaredcos_cap_v2", "use_karras_sigmas": True}, 12, {}),
    (DPM, "3M 20 steps", {**SD, "solver_order": 3}, 20, {}),
    (DPM, "3M lower_order_final, final sigma_min, 10 steps", {**SD, "solver_order": 3, "final_sigmas_type": "sigma_min"}, 10, {}),
    (DPM, "2M heun 15 steps", {**SD, "solver_type": "heun"}, 15, {}),
    (DPM, "2M v_prediction 20 steps", {**SD, "prediction_type": "v_prediction"}, 20, {}),
    (DPM, "2M sample prediction 8 steps", {**SD, "prediction_type": "sample"}, 8, {}),
    (DPM, "2M zero snr trailing v_prediction 8 steps", ZERO_SNR_V, 8, {}),
    (DPM, "2M lambda_min_clipped squaredcos 10 steps", {"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1}, 10, {}),
    (DPM, "2M 1 step", SD, 1, {}),
    (DPM, "2M start at step 3 of 10", SD, 10, {"begin": 3}),
    (DPM, "2M start at step 12 of 25", SD, 25, {"begin": 12}),
    (DPM, "2M start at step 2 of 4 trailing", {**SD, "timestep_spacing": "trailing"}, 4, {"begin": 2}),
    (DPM, "3M start at step 5 of 20", {**SD, "solver_order": 3}, 20, {"begin": 5}),
    (PNDM, "sd15 10 steps", SD15, 10, {}),
    (PNDM, "sd15 30 steps", SD15, 30, {}),
    (PNDM, "sd15 1 step", SD15, 1, {}),
    (PNDM, "sd15 2 steps", SD15, 2, {}),
    (PNDM, "sd15 3 steps", SD15, 3, {}),
    (PNDM, "linspace 10 steps", {**SD15, "timestep_spacing": "linspace"}, 10, {}),
    (PNDM, "trailing 8 steps", {**SD15, "timestep_spacing": "trailing"}, 8, {}),
    (PNDM, "v_prediction 10 steps", {**SD15, "prediction_type": "v_prediction"}, 10, {}),
    (PNDM, "set_alpha_to_one 6 steps", {**SD15, "set_alpha_to_one": True}, 6, {}),
]


def f32(values) -> list[float]:
    """Shortest decimals that round-trip each value's float32."""
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError("non-finite value in golden data")
    return [float(str(v)) for v in arr]


def timesteps_json(ts: torch.Tensor) -> list:
    if ts.dtype.is_floating_point:
        return f32(ts.numpy())
    return [int(v) for v in ts.tolist()]


class NoiseStream:
    """Replaces a scheduler module's `randn_tensor` with draws from a numpy stream, logging them."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.drawn: list[np.ndarray] = []

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None, **kwargs):
        noise = self.rng.standard_normal(tuple(shape)).astype(np.float32)
        self.drawn.append(noise)
        out = torch.from_numpy(noise)
        return out.to(dtype) if dtype is not None else out


def run_case(index: int, class_name: str, name: str, config: dict, steps: int, extra: dict) -> dict:
    cls = getattr(diffusers, class_name)
    scheduler = cls.from_config(config)
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    init_sigma = float(scheduler.init_noise_sigma)
    begin = extra.get("begin", 0)
    # Always pin the start index: diffusers otherwise looks the first timestep up in the list and
    # takes its second occurrence when it is repeated (e.g. Karras with the cosine schedule).
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    elif begin:
        raise ValueError(f"{class_name} cannot start at step {begin}")

    start = np.random.default_rng(1000 + index).standard_normal(SHAPE).astype(np.float32)
    sample = torch.from_numpy(start) * scheduler.init_noise_sigma
    model_rng = np.random.default_rng(2000 + index)
    module = sys.modules[cls.__module__]
    stream = NoiseStream(3000 + index)
    saved = getattr(module, "randn_tensor", None)
    if saved is not None:
        module.randn_tensor = stream
    records = []
    start_sample = f32(sample.numpy())
    try:
        for i in range(begin, len(timesteps)):
            t = timesteps[i]
            scaled = scheduler.scale_model_input(sample, t)
            model_output = torch.from_numpy(model_rng.standard_normal(SHAPE).astype(np.float32))
            before = len(stream.drawn)
            kwargs = {"eta": extra["eta"]} if "eta" in extra else {}
            out = scheduler.step(model_output, t, sample, **kwargs)
            drawn = stream.drawn[before:]
            if len(drawn) > 1:
                raise AssertionError("more than one noise draw in a step")
            x0 = getattr(out, "pred_original_sample", None)
            if x0 is None:
                x0 = getattr(out, "denoised", None)
            record = {
                "scaled_input": f32(scaled.numpy()),
                "model_output": f32(model_output.numpy()),
                "noise": f32(drawn[0]) if drawn else None,
                "prev_sample": f32(out.prev_sample.numpy()),
            }
            if x0 is not None:
                record["pred_original"] = f32(x0.numpy())
            records.append(record)
            sample = out.prev_sample
    finally:
        if saved is not None:
            module.randn_tensor = saved
    case = {
        "name": name,
        "config": config,
        "steps": steps,
        "timesteps": timesteps_json(timesteps),
        "init_noise_sigma": f32([init_sigma])[0],
        "begin": begin,
        "start_sample": start_sample,
        "records": records,
    }
    if "eta" in extra:
        case["eta"] = extra["eta"]
    return case


SWEEP_STEPS = list(range(1, 13)) + [15, 20, 25, 30, 50, 100]


def sweep() -> list[dict]:
    out = []
    base = {**SD, "skip_prk_steps": True}
    for class_name in (E, EA, DDIM, DPM, PNDM):
        for spacing in ("linspace", "leading", "trailing"):
            for offset in (0, 1):
                if spacing != "leading" and offset == 1:
                    continue  # steps_offset only matters for leading spacing
                config = {**base, "timestep_spacing": spacing, "steps_offset": offset}
                for steps in SWEEP_STEPS:
                    scheduler = getattr(diffusers, class_name).from_config(config)
                    scheduler.set_timesteps(steps)
                    out.append(
                        {
                            "class": class_name,
                            "config": config,
                            "steps": steps,
                            "timesteps": timesteps_json(scheduler.timesteps),
                            "init_noise_sigma": f32([float(scheduler.init_noise_sigma)])[0],
                        }
                    )
    for steps in list(range(1, 13)) + [20, 25, 50]:
        scheduler = diffusers.LCMScheduler.from_config(LCM)
        scheduler.set_timesteps(steps)
        out.append({"class": LCMS, "config": LCM, "steps": steps, "timesteps": timesteps_json(scheduler.timesteps), "init_noise_sigma": 1.0})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests" / "golden" / "schedulers"))
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    meta = {
        "generator": "tools/scheduler_goldens.py",
        "diffusers": diffusers.__version__,
        "torch": torch.__version__.split("+")[0],
        "numpy": np.__version__,
        "shape": list(SHAPE),
    }
    by_class: dict[str, list[dict]] = {}
    for index, (class_name, name, config, steps, extra) in enumerate(CASES):
        by_class.setdefault(class_name, []).append(run_case(index, class_name, name, config, steps, extra))
    for class_name, cases in by_class.items():
        path = out_dir / f"{class_name}.json"
        path.write_text(json.dumps({**meta, "class": class_name, "cases": cases}, separators=(",", ":")) + "\n")
    (out_dir / "timesteps.json").write_text(json.dumps({**meta, "cases": sweep()}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
