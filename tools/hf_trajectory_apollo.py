"""The APOLLO fixture cases (make_hf_trajectory.py --add apollo): the Trainer's apollo_adamw and
apollo_adamw_layerwise as transformers builds them from optim_target_modules and optim_args, on
apollo_torch 1.0.3.

A random basis is torch.randn from a CPU generator (the gradients' device here) seeded with the
parameter's position in its optimizer; llm_train draws the same numbers (engine/torch_generator.h).
An SVD basis is signed as llm_train signs it (hf_trajectory_galore.signed_svd), apollo_torch's
svd_projector otherwise unchanged."""
from apollo_torch import svd_projector

from hf_trajectory_galore import GradientNorms, with_parameter_schedules, with_signed_svd
from make_hf_trajectory import load, train

# Rank 16 against the fixture's widths (64 and 96); bases every 4 updates, redrawn twice in the
# 10 steps, the moments carried across.
APOLLO_ARGS = "rank=16,update_proj_gap=4"


def apollo_cases(out, rows):
    def case(optim, optim_args, optim_target_modules, axolotl_targets=None, layerwise=False, **settings):
        model = load(out, "untied")
        run = dict(optim=optim, optim_args=optim_args, optim_target_modules=optim_target_modules, **settings)
        if layerwise:
            # As galore_layerwise_cases: each parameter's own schedule, and the norms its hooks saw.
            norms = GradientNorms(model)
            result = with_parameter_schedules(lambda: train(
                model, rows, gradient_accumulation_steps=1, callbacks=[norms.callback()], **run))
            assert all(s["grad_norm"] == 0 for s in result["steps"]), result["steps"]
            for s, norm in zip(result["steps"], norms.norms):
                s["grad_norm"] = norm
        else:
            result = train(model, rows, **run)
        return dict(result, optim=optim, optim_args=optim_args,
                    optim_target_modules=axolotl_targets or optim_target_modules, settings=settings)
    return {
        # The attention and MLP linears, random bases, one scaling factor a channel (rows of the
        # tall gate and up projections, columns of the wide down projection).
        "apollo_adamw": case("apollo_adamw", APOLLO_ARGS, ["attn", "mlp"]),
        # APOLLO-Mini: rank 1, one factor a tensor, scale 128, every linear (lm_head among them).
        "apollo_mini": case("apollo_adamw", "rank=1,scale_type=tensor,scale=128,update_proj_gap=4", "all-linear",
                            "all_linear"),
        # SVD bases, reverse_std, tensor scaling, and a beta2 of the Trainer's own (the projected
        # tensors take it, the rest the class's 0.999).
        "apollo_svd": with_signed_svd(False, lambda: case(
            "apollo_adamw", APOLLO_ARGS + ",proj=svd,proj_type=reverse_std,scale_type=tensor", ["attn", "mlp"],
            adam_beta2=0.99), svd_projector),
        # Layer-wise: each parameter its own optimizer, whose first seed is 1.
        "apollo_adamw_layerwise": case("apollo_adamw_layerwise", APOLLO_ARGS, ["attn", "mlp"], layerwise=True),
    }
