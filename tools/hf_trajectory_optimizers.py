"""The fixture cases of optimizers other than the Trainer's AdamW (make_hf_trajectory.py --add
optimizers|muon|optimi|adamc|came): the Trainer's own by their names, and Axolotl's optimizer
classes built as Axolotl builds them."""
import importlib.util
import os

import torch
import transformers

from hf_trajectory_galore import GradientNorms
from make_hf_trajectory import load, train


def axolotl_groups(model, args):
    """The groups Axolotl's create_optimizer makes for its own optimizer classes when no lr group
    is set: decayed parameters, embed_tokens and lm_head without decay, the rest without decay."""
    decayed = set(transformers.Trainer.get_decay_parameter_names(None, model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    embedding = [p for n, p in named if "embed_tokens" in n or "lm_head" in n]
    rest = [(n, p) for n, p in named if "embed_tokens" not in n and "lm_head" not in n]
    return [{"params": [p for n, p in rest if n in decayed], "weight_decay": args.weight_decay, "lr": args.learning_rate},
            {"params": embedding, "weight_decay": 0.0, "lr": args.learning_rate},
            {"params": [p for n, p in rest if n not in decayed], "weight_decay": 0.0, "lr": args.learning_rate}]


def trainer_groups_optimizer(model, args):
    """The Trainer's own optimizer for args.optim over its two groups (decayed and not), built
    outside it so that a scheduler of Axolotl's can be handed beside it."""
    cls, kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(args, model)
    decayed = set(transformers.Trainer.get_decay_parameter_names(None, model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return cls([{"params": [p for n, p in named if n in decayed], "weight_decay": args.weight_decay},
                {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}], **kwargs)


def one_cycle(optimizer, args):
    """Axolotl's one_cycle: torch's OneCycleLR from learning_rate / 25 over the warmup's share of
    the steps, then a cosine down, cycling the optimizer's beta1 or momentum against the rate."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=args.max_steps,
                                               pct_start=args.get_warmup_steps(args.max_steps) / args.max_steps,
                                               anneal_strategy="cos")


def optimizer_cases(out, rows):
    # The Trainer's other optimizers by their names, as Axolotl's `optimizer` hands them on:
    # bitsandbytes' (on its CPU kernels) Lion with the Trainer's Adam betas, f32 and 8-bit momentum,
    # 8-bit AdamW and AdEMAMix (f32, and 8-bit with optim_args' beta3 and alpha warmups), under 8
    # bits the token embedding's state f32; transformers' Adafactor.
    cases = {name: dict(train(load(out, "untied"), rows, optim=name), optim=name)
             for name in ("lion_32bit", "lion_8bit", "adamw_8bit", "adafactor", "ademamix")}
    args = "beta3=0.999,alpha=8,t_alpha=6,t_beta3=6"
    cases["ademamix_8bit"] = dict(train(load(out, "untied"), rows, optim="ademamix_8bit", optim_args=args),
                                  optim="ademamix_8bit", optim_args=args)
    return cases


def rmsprop_bnb_cases(out, rows):
    # transformers' rmsprop_bnb (bitsandbytes' RMSprop, 32-bit) and rmsprop_bnb_8bit (its square_avg
    # 8-bit blockwise, the token embedding's f32), on bitsandbytes' CPU kernels.
    return {name: dict(train(load(out, "untied"), rows, optim=name), optim=name)
            for name in ("rmsprop_bnb", "rmsprop_bnb_8bit")}


def axolotl_muon(optim_args):
    """make_optimizer for Axolotl's `optimizer: muon`: its factory from axolotl-contribs-mit 0.0.6
    (the version Axolotl pins), handed what Axolotl's builder hands it (lr, weight_decay, the
    betas when adam_beta1 and adam_beta2 are set, eps when adam_epsilon is, then optim_args)."""
    import sys
    import types
    if "axolotl.integrations.base" not in sys.modules:  # the factory's base class, without Axolotl
        base = types.ModuleType("axolotl.integrations.base")

        class BaseOptimizerFactory:
            def get_decay_parameter_names(self, model):
                return transformers.Trainer.get_decay_parameter_names(None, model)
        base.BaseOptimizerFactory = BaseOptimizerFactory
        sys.modules["axolotl.integrations"] = types.ModuleType("axolotl.integrations")
        sys.modules["axolotl.integrations.base"] = base
    from axolotl.contribs.mit.muon import MuonOptimizerFactory

    def make(model, args):
        return MuonOptimizerFactory()(model, args, lr=args.learning_rate, weight_decay=args.weight_decay,
                                      betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon, **optim_args)
    return make


def muon_cases(out, rows):
    # Axolotl's Muon (Moonlight's): orthogonalised momentum for the block matrices, its AdamW for
    # the embedding and lm_head, the norms left out; then with optim_args (no Nesterov, another
    # momentum, fewer Newton-Schulz steps) on the tied model.
    cases = {"muon": dict(train(load(out, "untied"), rows, make_optimizer=axolotl_muon({})), optim="muon")}
    args = {"momentum": 0.9, "nesterov": False, "ns_steps": 3}
    cases["muon_args"] = dict(train(load(out, "tied"), rows, make_optimizer=axolotl_muon(args)), optim="muon",
                              optim_args=args)

    # one_cycle over Muon: torch's OneCycleLR finds `momentum` (no `betas`) in its defaults and
    # cycles the matrices' SGD momentum against the rate.
    def make_scheduler(optimizer, args):
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=args.max_steps,
                                                   pct_start=args.get_warmup_steps(args.max_steps) / args.max_steps,
                                                   anneal_strategy="cos")
    cases["muon_one_cycle"] = dict(train(load(out, "untied"), rows, make_optimizer=axolotl_muon({}),
                                         make_scheduler=make_scheduler), optim="muon", lr_scheduler="one_cycle")
    return cases


def optimi_cases(out, rows):
    # Axolotl's optimi_adamw: torch-optimi's AdamW (its moments kept debiased, the same update in
    # other roundings) over the groups Axolotl's create_optimizer makes for its own optimizer
    # classes (embed_tokens and lm_head without decay), handed the betas and eps the settings give
    # and Axolotl's foreach=False (and no Triton: the CPU).
    import optimi

    def make(model, args):
        return optimi.AdamW(axolotl_groups(model, args), lr=args.learning_rate, weight_decay=args.weight_decay,
                            betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon, foreach=False, triton=False)
    return {"optimi_adamw": dict(train(load(out, "untied"), rows, make_optimizer=make), optim="optimi_adamw")}


def axolotl_file(relative):
    """One module file of Axolotl (AXOLOTL_SRC: the directory holding its package, e.g. an unpacked
    wheel), loaded on its own: the package's __init__ imports far more than the file needs."""
    path = os.path.join(os.environ.get("AXOLOTL_SRC", "/tmp/axo/x"), "axolotl", relative)
    spec = importlib.util.spec_from_file_location("axolotl_" + os.path.basename(relative)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def adamc_cases(out, rows):
    # Axolotl 0.19's adamc (axolotl/utils/optimizers/adamc.py): AdamW whose decay at lr is
    # weight_decay x lr^2 / max_lr, max_lr each group's lr before the schedule, over Axolotl's groups
    # with the betas and eps the settings give. A weight decay of 0.5 makes its correction show
    # through the warmup and the cosine; then optim_args' max_lr on the tied model.
    AdamC = axolotl_file("utils/optimizers/adamc.py").AdamC

    def make(optim_args):
        def build(model, args):
            return AdamC(axolotl_groups(model, args), lr=args.learning_rate, weight_decay=args.weight_decay,
                         betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon, **optim_args)
        return build
    decay = dict(weight_decay=0.5)
    cases = {"adamc": dict(train(load(out, "untied"), rows, make_optimizer=make({}), **decay), optim="adamc", **decay)}
    args = {"max_lr": 2e-3}
    cases["adamc_max_lr"] = dict(train(load(out, "tied"), rows, make_optimizer=make(args), **decay), optim="adamc",
                                 optim_args=args, **decay)
    return cases


def came_cases(out, rows):
    # Axolotl's came_pytorch: came_pytorch 0.1.3's CAME over Axolotl's groups, handed what Axolotl's
    # builder hands it: betas (adam_beta1, adam_beta2, adam_beta3 each as given, else 0.9, 0.999,
    # 0.9999) and eps (adam_epsilon as given, else 1e-30; adam_epsilon2, else 1e-16). First with
    # neither epsilon set (the C++ side drops the fixture's adam_epsilon); then on the tied model
    # with adam_epsilon 1e-8, adam_beta3 0.999, adam_epsilon2 1e-12 and optim_args' clip_threshold.
    from came_pytorch import CAME

    def make(betas, eps, optim_args):
        def build(model, args):
            return CAME(axolotl_groups(model, args), lr=args.learning_rate, weight_decay=args.weight_decay,
                        betas=betas, eps=eps, **optim_args)
        return build
    cases = {"came": dict(train(load(out, "untied"), rows,
                                make_optimizer=make((0.9, 0.999, 0.9999), (1e-30, 1e-16), {})),
                          optim="came_pytorch", adam_epsilon=None)}
    args = {"clip_threshold": 0.5}
    cases["came_args"] = dict(train(load(out, "tied"), rows,
                                    make_optimizer=make((0.9, 0.999, 0.999), (1e-8, 1e-12), args)),
                              optim="came_pytorch", adam_beta3=0.999, adam_epsilon2=1e-12, optim_args=args)
    return cases


def schedule_free_cases(out, rows):
    # transformers' schedule_free_* (schedulefree 1.4.1's optimizers by the Trainer's names): AdamW
    # warming up over the Trainer's warmup_steps on top of the cosine's, evaluated at the start and
    # every 5 steps, so the weights switch from y to x and back mid-run (optimizer.eval() in
    # evaluation, .train() in each training step); RAdam on the tied model; SGD (momentum 0.9, its
    # own warmup) at a rate SGD moves at, under the constant schedule, with optim_args' weighting.
    evals = dict(eval_rows=rows[:5], eval_strategy="steps", eval_steps=5, per_device_eval_batch_size=1)
    cases = {"schedule_free_adamw": dict(train(load(out, "untied"), rows, optim="schedule_free_adamw", **evals),
                                         optim="schedule_free_adamw", eval_examples=5, eval_steps=5, eval_batch_size=1),
             "schedule_free_radam": dict(train(load(out, "tied"), rows, optim="schedule_free_radam"),
                                         optim="schedule_free_radam")}

    # one_cycle: torch's OneCycleLR cycles the AdamW's betas[0] in its scheduler.step() after each
    # update, so an evaluation's switch to x (and the switch back) reads the next update's beta1.
    cycled = dict(learning_rate=1e-2)  # x far enough from y that beta1's timing shows in eval_loss
    cases["schedule_free_one_cycle"] = dict(
        train(load(out, "untied"), rows, optim="schedule_free_adamw", make_optimizer=trainer_groups_optimizer,
              make_scheduler=one_cycle, **evals, **cycled),
        optim="schedule_free_adamw", lr_scheduler="one_cycle", eval_examples=5, eval_steps=5, eval_batch_size=1,
        **cycled)
    sgd = dict(learning_rate=0.5, lr_scheduler_type="constant", optim_args="weight_lr_power=1,r=0.5")
    cases["schedule_free_sgd"] = dict(train(load(out, "tied"), rows, optim="schedule_free_sgd", **sgd),
                                      optim="schedule_free_sgd", **sgd)
    return cases


def torchao_cases(out, rows):
    # transformers' adamw_torch_8bit (Axolotl's 3b-qat-mxfp4.yaml): torchao 0.18's AdamW8bit, its
    # update torch.compile'd on the CPU; on the untied model the token embedding, lm_head, q_proj and
    # the MLP weights keep 8-bit state (4096 elements or more, whole blocks of 256), k_proj, v_proj
    # and the norms f32.
    # adamw_torch_4bit: its AdamW4bit, transformers' block_size 256 too, the same tensors 4-bit.
    # Axolotl's ao_adamw_fp8: its AdamWFp8 (block_size 256) over Axolotl's groups, the same tensors
    # in float8 e4m3, handed the betas and eps the settings give as Axolotl's builder hands them.
    from torchao.optim import AdamWFp8

    def fp8(model, args):
        return AdamWFp8(axolotl_groups(model, args), lr=args.learning_rate, weight_decay=args.weight_decay,
                        betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
    cases = {name: dict(train(load(out, "untied"), rows, optim=name), optim=name)
             for name in ("adamw_torch_8bit", "adamw_torch_4bit")}
    cases["ao_adamw_fp8"] = dict(train(load(out, "untied"), rows, make_optimizer=fp8), optim="ao_adamw_fp8")
    return cases


def torch_optim_cases(out, rows):
    # transformers' sgd, adagrad and rmsprop: torch.optim's, the Trainer's groups (its weight decay
    # added to the gradient), the rest from optim_args: SGD with Nesterov momentum at lr 0.1,
    # Adagrad with a decaying rate at 1e-2, centered RMSprop with momentum and its own alpha.
    settings = {"sgd": dict(learning_rate=0.1, optim_args="momentum=0.9,nesterov=True"),
                "adagrad": dict(learning_rate=1e-2, optim_args="lr_decay=0.1,eps=1e-6"),
                "rmsprop": dict(learning_rate=1e-3, optim_args="momentum=0.5,centered=True,alpha=0.9")}
    cases = {name: dict(train(load(out, "untied"), rows, optim=name, **kw), optim=name, **kw)
             for name, kw in settings.items()}

    # Axolotl's one_cycle over them: torch's OneCycleLR sets each group's momentum before every
    # update (0.95 down to 0.85 and back against the rate), SGD's and RMSprop's in place of their own.
    cycled = {"sgd": dict(learning_rate=0.1), "rmsprop": dict(learning_rate=1e-3, optim_args="centered=True")}
    for name, kw in cycled.items():
        cases[name + "_one_cycle"] = dict(train(load(out, "untied"), rows, optim=name,
                                                make_optimizer=trainer_groups_optimizer, make_scheduler=one_cycle, **kw),
                                          optim=name, lr_scheduler="one_cycle", **kw)
    return cases



def stable_adamw_cases(out, rows):
    # transformers' stable_adamw: torch-optimi's StableAdamW over the Trainer's groups with the
    # Trainer's betas, eps and weight decay; then on the tied model with optim_args' decouple_lr
    # (any value given is true to transformers' bool()) and max_lr, at lr 1e-2 so that the RMS
    # division shows.
    # (optimi picks Triton when it sets a group up, from the group's parameters with a gradient,
    # of which it has none yet: on the CPU it then stops with no GPU driver; its own loop is the
    # same algorithm.)
    import sys
    import optimi  # noqa: F401 (its package exports a function of the module's name)
    sys.modules["optimi.stableadamw"]._default_to_triton = lambda params: False
    args = "decouple_lr=True,max_lr=0.02"
    return {"stable_adamw": dict(train(load(out, "untied"), rows, optim="stable_adamw"), optim="stable_adamw"),
            "stable_adamw_decoupled": dict(train(load(out, "tied"), rows, optim="stable_adamw", optim_args=args,
                                                 learning_rate=1e-2),
                                           optim="stable_adamw", optim_args=args, learning_rate=1e-2)}


def grokadamw_cases(out, rows):
    # transformers' grokadamw: the grokadamw package's GrokAdamW over the Trainer's groups, its own
    # betas and eps (transformers hands it lr and its own arguments); then on the tied model with
    # every optim_arg it reads.
    args = "alpha_init=0.9,lamb=1.5,gamma=0.2,gradient_clipping=0.5"
    return {"grokadamw": dict(train(load(out, "untied"), rows, optim="grokadamw"), optim="grokadamw"),
            "grokadamw_args": dict(train(load(out, "tied"), rows, optim="grokadamw", optim_args=args),
                                   optim="grokadamw", optim_args=args)}


def lomo_cases(out, rows):
    """transformers' lomo and adalomo: lomo_optim's LOMO (SGD) and AdaLomo (Adafactor at the rate
    times each parameter's RMS, every pass a step of its decay rate) at the schedule's rate in each
    micro-batch's backward (accelerate's lomo_backward), no decay or clipping; at lr 0.1 so that
    plain SGD moves the loss. The Trainer logs a grad norm of 0 (the gradients are gone); the
    fixture's is the root of the summed squares of every pass's gradients, as llm_train logs it.
    Untied over two micro-batches a step; tied (one table, one update of its summed gradient) over
    one. AdaLomo allocates its state with .cuda(), kept on the CPU here, and scales the loss by
    its loss_scale (2^10, exact in binary) before backward, divided out of the recorded norms."""
    def case(optim, model, **run):
        norms = GradientNorms(model)
        cuda = torch.Tensor.cuda
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        try:
            result = train(model, rows, optim=optim, learning_rate=0.1, callbacks=[norms.callback()], **run)
        finally:
            torch.Tensor.cuda = cuda
        assert all(s["grad_norm"] == 0 for s in result["steps"]), result["steps"]
        for s, norm in zip(result["steps"], norms.norms):
            s["grad_norm"] = norm / (2 ** 10 if optim == "adalomo" else 1)
        return dict(result, optim=optim, learning_rate=0.1, **run)
    return {name: case(name.split("_")[0], load(out, "tied" if name.endswith("tied") else "untied"),
                       **(dict(gradient_accumulation_steps=1) if name.endswith("tied") else {}))
            for name in ("lomo", "lomo_tied", "adalomo", "adalomo_tied")}
