"""A short enhancer fine-tune in this process, through the enhancer job's own pieces.

For measurements that compare losses or precisions on equal terms without a Ray cluster: the
hybrid-loss ablation (``python -m tools.hybrid_ablation``) and the training fast path's quality
parity (``bench/quality_parity.py``). It uses the job's ``train_dataset``, ``build_loss``,
``warmed_up`` and ``nie_core.training.train_step``; one process stands for the job's workers
(``batch`` = workers x per-worker batch; the loss is a mean, so the step is the same).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from nie_core.training import fast_autocast, train_step

from .config import EnhancerJobConfig
from .enhancer import _build_model, build_loss, load_scorer, train_dataset, warmed_up

__all__ = ["quick_finetune"]


def quick_finetune(
    cfg: EnhancerJobConfig, steps: int, batch: int = 8, seed: int = 0, fast: bool = False
) -> torch.nn.Module:
    """``cfg``'s model (its ``model.weights``, e.g. the zoo checkpoint) trained for ``steps``
    steps of ``batch`` patches with ``cfg``'s loss, optimiser and warm-up; ``fast``: bf16
    autocast and channels_last, as a worker on the fast path. Returns the model in eval mode,
    float32, contiguous."""
    torch.manual_seed(seed)
    model = _build_model(cfg)
    loss_fn = build_loss(cfg, load_scorer(cfg))
    loader = DataLoader(train_dataset(cfg), batch_size=batch, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=cfg.optim.betas,
                                 eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)  # fmt: skip
    layout = torch.channels_last if fast else torch.contiguous_format
    model = model.to(memory_format=layout).train()
    loss_fn.train()
    done = 0
    while done < steps:
        for lr_img, hr_img in loader:
            inputs = lr_img.contiguous(memory_format=layout)
            target = hr_img.contiguous(memory_format=layout)
            with warmed_up(optimizer, done, cfg.optim.warmup_steps):
                train_step(model, (inputs, target), loss_fn, optimizer, fast_autocast("cpu", fast))
            done += 1
            if done == steps:
                break
    return model.eval().to(memory_format=torch.contiguous_format)
