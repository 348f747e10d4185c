"""The GaLore fixture cases (make_hf_trajectory.py --add galore): the Trainer's galore_adamw,
galore_adamw_8bit and galore_adafactor as transformers builds them from optim_target_modules and optim_args, on
galore_torch 1.0 (bitsandbytes' CPU kernels under the 8-bit one).

A basis is the top singular vectors of a gradient, each up to its sign, which is whatever the
LAPACK computing it picks (MKL's under torch's CPU wheels; OpenBLAS builds differ among
themselves). The sign changes nothing while one basis holds (the moments flip with it); once a
basis is recomputed, the moments carried over from the last one meet the new signs. llm_train
signs each singular vector so that its largest element is positive (engine/galore.h), and so do
the cases that recompute bases here, torch's SVD and update otherwise unchanged; galore_adamw
keeps torch's SVD as it is and one basis for the whole run."""
import torch
import transformers
from galore_torch import galore_projector

from make_hf_trajectory import load, train

# Rank 16 keeps every projection below its matrix's sides at the fixture's widths (64 and 96); a
# basis every 4 updates is recomputed twice within the 10 steps, the moments carried across.
GALORE_ARGS = "rank=16,update_proj_gap=4,scale=0.25"


def signed_svd(matrix, full_matrices=False):
    """torch.linalg.svd with each singular pair signed so that v's (and u's) largest element is
    positive: the basis is v's rows for a right projection and u's columns for a left one, and
    llm_train signs the one it keeps, so both are signed here (each pair flipped as one)."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=full_matrices)
    # The projector keeps vh's rows when it projects from the right (rows >= cols under std).
    right = matrix.shape[0] >= matrix.shape[1] if signed_svd.std_side else matrix.shape[0] < matrix.shape[1]
    kept = vh if right else u.T
    largest = kept.abs().argmax(dim=1)  # the first of equal ones, as llm_train's
    sign = torch.where(kept.gather(1, largest[:, None])[:, 0] < 0, -1.0, 1.0)
    return u * sign[None, :], s, vh * sign[:, None]


class SignedLinalg:
    svd = staticmethod(signed_svd)


class TorchWithSignedSvd:
    """torch, its linalg.svd signed_svd."""
    linalg = SignedLinalg

    def __getattr__(self, name):
        return getattr(torch, name)


def with_signed_svd(std_side, run, projector=galore_projector):
    """run() with a projector module (galore_torch's, apollo_torch's svd_projector or
    q_galore_torch's) taking signed_svd for torch.linalg.svd."""
    projector_torch = projector.torch
    projector.torch = TorchWithSignedSvd()
    signed_svd.std_side = std_side
    try:
        return run()
    finally:
        projector.torch = projector_torch


def nearest_code_quantiser(values, code, absmax_out, out_uint8, blocksize):
    """bitsandbytes' blockwise requantisation of optimizer state as its CUDA kernels (and
    llm_train's, engine/quant_map.h) do it: x times the block's 1 / absmax, the nearest code (ties
    to the lower), and on the signed map x's sign kept (a small negative value takes the negative
    code beside 0). Its CPU path places small values a code off."""
    flat = values.reshape(-1).float()
    blocks = -(-flat.numel() // blocksize)
    padded = torch.zeros(blocks * blocksize)
    padded[:flat.numel()] = flat
    padded = padded.view(blocks, blocksize)
    absmax = padded.abs().max(dim=1).values
    inverse = torch.where(absmax > 0, 1.0 / absmax, torch.zeros_like(absmax))
    scaled = (padded * inverse[:, None]).reshape(-1)[:flat.numel()]
    table = code.float()
    nearest = (scaled[:, None] - table[None, :]).abs().argmin(dim=1)  # the first (lower) of equal ones
    if table.min() < 0:
        negative = torch.signbit(scaled)
        flipped = negative != torch.signbit(table[nearest])
        nearest = torch.where(flipped, torch.where(scaled > 0, nearest + 1, nearest - 1), nearest)
    out_uint8.copy_(nearest.to(torch.uint8).view(out_uint8.shape))
    absmax_out.copy_(absmax)


def galore_cases(out, rows):
    # galore_torch's 8-bit optimizer waits on the GPU after each update, which the CPU run has not.
    torch.cuda.synchronize = lambda *args, **kwargs: None
    from bitsandbytes.backends.cpu import ops as bnb_cpu_ops
    targets = ["attn", "mlp"]

    def case(optim, optim_args, optim_target_modules, axolotl_targets=None):
        result = train(load(out, "untied"), rows, optim=optim, optim_args=optim_args,
                       optim_target_modules=optim_target_modules)
        return dict(result, optim=optim, optim_args=optim_args,
                    optim_target_modules=axolotl_targets or optim_target_modules)
    return {
        # The attention and MLP linears (transformers' substring match), one basis (the default gap
        # of 200) from torch's own SVD.
        "galore_adamw": case("galore_adamw", "rank=16", targets),
        # Bases recomputed every 4 updates, proj_type reverse_std.
        "galore_adamw_refresh": with_signed_svd(False, lambda: case(
            "galore_adamw", GALORE_ARGS + ",proj_type=reverse_std", targets)),
        # transformers' Adafactor (scale_parameter and relative_step off) over the low-rank gradients.
        "galore_adafactor": with_signed_svd(True, lambda: case("galore_adafactor", GALORE_ARGS, targets)),
        # Every linear, lm_head too (272 x 64: its 272 x 16 moments are 8-bit, as the token
        # embedding's: this Trainer path registers no nn.Embedding override), the state requantised
        # as bitsandbytes' CUDA kernels do (its CPU path rounds small moments a code off), the class
        # constructed as galore_torch means it under bitsandbytes 0.50 (with_bnb050_init).
        "galore_adamw_8bit": with_signed_svd(True, lambda: with_nearest_codes(bnb_cpu_ops, lambda: with_bnb050_init(
            lambda: case("galore_adamw_8bit", GALORE_ARGS, "all-linear", "all_linear")))),
    }


def with_bnb050_init(run):
    """run() with galore_torch's AdamW8bit constructed as it means to be under bitsandbytes 0.50.
    It hands Optimizer2State its (pre-0.44) percentile_clipping and block_wise positionally, which
    0.50 takes as max_unorm (100) and skip_zeros (True): a projected matrix whose low-rank state is
    f32 (under 4096 elements) then has its update scaled by 100 x the norm of its zeroed stand-in,
    0, and never moves but for its decay. Axolotl patches q-galore-torch's copy of this class the
    same way (patch_q_galore_for_modern_bnb); transformers leaves galore_torch's as it is.
    llm_train runs the update GaLore means, so the fixture does too."""
    from bitsandbytes.optim.optimizer import Optimizer2State
    from galore_torch.adamw8bit import AdamW8bit
    original = AdamW8bit.__init__

    def init(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, optim_bits=32,
             args=None, min_8bit_size=4096, percentile_clipping=100, block_wise=True, is_paged=False):
        Optimizer2State.__init__(self, "adam", params, lr, betas, eps, weight_decay, 8, args, min_8bit_size,
                                 is_paged=is_paged)
    AdamW8bit.__init__ = init
    try:
        return run()
    finally:
        AdamW8bit.__init__ = original


def with_nearest_codes(bnb_cpu_ops, run):
    """run() with bitsandbytes' CPU 8-bit optimizers requantising to the nearest code."""
    original = bnb_cpu_ops._quant_blockwise_fp32_direct
    bnb_cpu_ops._quant_blockwise_fp32_direct = nearest_code_quantiser
    try:
        return run()
    finally:
        bnb_cpu_ops._quant_blockwise_fp32_direct = original


class GradientNorms:
    """The norm of each step's gradients, summed as each parameter's gradient completes: a
    post-accumulate-grad hook registered before the Trainer registers its layerwise optimizer's
    (hooks run in that order), so it sees every gradient before its update drops it. The
    Trainer's own grad_norm is 0 under a layerwise optimizer (clip_grad_norm_ finds no gradient
    left), so these stand in its place."""

    def __init__(self, model):
        self.squares, self.norms = 0.0, []
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(self.add)

    def add(self, param):
        self.squares += float(param.grad.double().pow(2).sum())

    def callback(self):
        norms = self

        class EndOfStep(transformers.TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                norms.norms.append(norms.squares ** 0.5)
                norms.squares = 0.0
        return EndOfStep()


def with_parameter_schedules(run):
    """run() with each parameter's optimizer given its own schedule, stepped in a hook after its
    update: get_scheduler's layer-wise branch, which transformers 5 misses (it builds the schedule
    over accelerate's wrapper of the stand-in optimizer, which get_scheduler does not recognise,
    and its LayerWiseDummyScheduler no longer builds under torch 2.9's strict zip), so every
    parameter stays at learning_rate while the stand-in's schedule is logged. As layer-wise
    GaLore was built to run, and llm_train runs it; the Trainer's own schedule still gives the
    logged rate."""
    original = transformers.Trainer.create_scheduler

    def create_scheduler(self, num_training_steps, optimizer=None):
        logged = original(self, num_training_steps, optimizer)
        for param, own in self.optimizer.optimizer.optimizer_dict.items():
            schedule = transformers.get_scheduler(
                self.args.lr_scheduler_type, optimizer=own, num_warmup_steps=self.args.get_warmup_steps(num_training_steps),
                num_training_steps=num_training_steps, scheduler_specific_kwargs=self.args.lr_scheduler_kwargs)
            param.register_post_accumulate_grad_hook(lambda _, schedule=schedule: schedule.step())
        return logged
    transformers.Trainer.create_scheduler = create_scheduler
    try:
        return run()
    finally:
        transformers.Trainer.create_scheduler = original


def galore_layerwise_cases(out, rows):
    """transformers' galore_*_layerwise: one optimizer (and one schedule, with_parameter_schedules)
    a parameter, stepped in a hook as soon as its gradient is complete, the gradient then dropped;
    no clipping, and no gradient accumulation (transformers raises). The targets and arguments of
    galore_cases.
    galore_adafactor_layerwise is not among them: transformers builds its Adafactors before it
    turns relative_step off, and galore_torch's Adafactor raises on a learning rate beside it."""
    torch.cuda.synchronize = lambda *args, **kwargs: None
    from bitsandbytes.backends.cpu import ops as bnb_cpu_ops

    def case(optim, optim_args, optim_target_modules, axolotl_targets=None):
        model = load(out, "untied")
        norms = GradientNorms(model)
        result = with_parameter_schedules(lambda: train(
            model, rows, optim=optim, optim_args=optim_args, optim_target_modules=optim_target_modules,
            gradient_accumulation_steps=1, callbacks=[norms.callback()]))
        assert all(s["grad_norm"] == 0 for s in result["steps"]), result["steps"]
        for s, norm in zip(result["steps"], norms.norms):
            s["grad_norm"] = norm
        return dict(result, optim=optim, optim_args=optim_args,
                    optim_target_modules=axolotl_targets or optim_target_modules)
    return {
        "galore_adamw_layerwise": case("galore_adamw_layerwise", "rank=16", ["attn", "mlp"]),
        "galore_adamw_8bit_layerwise": with_signed_svd(True, lambda: with_nearest_codes(bnb_cpu_ops, lambda: with_bnb050_init(
            lambda: case("galore_adamw_8bit_layerwise", GALORE_ARGS, "all-linear", "all_linear")))),
    }


def qgalore_cases(out, rows):
    """Axolotl 0.19's q_galore_adamw8bit: its build_qgalore_param_groups (the 2-D parameters whose
    name holds a target, projected; the rest plain) and QGaLoreAdamW8bit (q-galore-torch 1.0, under
    Axolotl's patch for bitsandbytes 0.50) with the Trainer's lr, weight_decay, betas and eps, as
    Axolotl's builder hands them, and optim_args' min_8bit_size as its constructor takes it.
    Bases every 2 updates, the gap's growth decided over a queue of 2; SVD signed as ours,
    bitsandbytes' requantisation as galore_adamw_8bit's. min_8bit_size 10^9 keeps every moment f32,
    which leaves Q-GaLore's own steps (its bases' codes, its gap) to be compared closely."""
    torch.cuda.synchronize = lambda *args, **kwargs: None
    from bitsandbytes.backends.cpu import ops as bnb_cpu_ops
    from axolotl.utils.optimizers.qgalore import build_qgalore_param_groups, patch_q_galore_for_modern_bnb
    patch_q_galore_for_modern_bnb()
    from q_galore_torch import QGaLoreAdamW8bit, q_galore_projector

    def case(targets, min_8bit_size=None, **keys):
        qgalore = dict(dict(rank=16, update_proj_gap=2, scale=0.25, proj_type="std", proj_quant=True, proj_bits=4,
                            proj_group_size=256, cos_threshold=0.4, gamma_proj=2, queue_size=2), **keys)
        optim_args = {} if min_8bit_size is None else {"min_8bit_size": min_8bit_size}

        def make_optimizer(model, args):
            groups = build_qgalore_param_groups(model, targets, **qgalore)
            return QGaLoreAdamW8bit(groups, lr=args.learning_rate, weight_decay=args.weight_decay,
                                    betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon, **optim_args)
        result = with_signed_svd(True, lambda: with_nearest_codes(bnb_cpu_ops, lambda: train(
            load(out, "untied"), rows, make_optimizer=make_optimizer)), q_galore_projector)
        return dict(result, optim_target_modules=targets, qgalore=qgalore, optim_args=optim_args)
    f32_state = 10 ** 9
    return {
        # 4-bit bases in groups of 256 over the attention and MLP matrices, 8-bit moments.
        "q_galore": case(["attn", "mlp"]),
        # f32 moments; every matrix projected, the embedding and lm_head too; the gap tripled
        # whenever the queue is full (threshold -1): bases at updates 1, 3, 5 and 7, then 19.
        "q_galore_growing": case(["proj", "embed", "lm_head"], f32_state, cos_threshold=-1.0, gamma_proj=3),
        # f32 moments and f32 bases.
        "q_galore_f32_bases": case(["attn", "mlp"], f32_state, proj_quant=False),
        # f32 moments, 2-bit bases in groups of 128, bases every 3 updates.
        "q_galore_2bit": case(["q_proj", "down_proj"], f32_state, proj_bits=2, proj_group_size=128, update_proj_gap=3),
    }
