"""``nanlint.watch`` for the frameworks: a Lightning ``Callback`` and a Hugging Face ``TrainerCallback``.
Each watches every optimizer step cheaply, keeps the health curves, and at the first non-finite step warns
(or raises), saves the step when ``save_dir`` is given (``nanlint replay DIR SCRIPT`` re-runs it under the full
monitor) and stops the training. Lightning and transformers are imported only when a callback is made."""
from __future__ import annotations

from nanlint.trace.watchapi import Watch


def _inner(optimizer):
    """The torch optimizer under a framework's wrapper (Lightning, accelerate)."""
    seen = 0
    while hasattr(optimizer, "optimizer") and seen < 4:
        optimizer, seen = optimizer.optimizer, seen + 1
    return optimizer


def lightning_callback(**options):
    """A ``lightning.pytorch.Callback`` (``options`` as ``nanlint.watch``: ``on_nonfinite``, ``save_dir``,
    ``sample_every``). After the fit: ``callback.watch.failure``, ``.health``, ``.write_html(path)``."""
    try:
        from lightning.pytorch import Callback
    except ImportError:  # the older package name
        from pytorch_lightning import Callback

    class NanlintCallback(Callback):
        def __init__(self) -> None:
            self.watch: Watch | None = None

        def on_train_start(self, trainer, pl_module) -> None:
            optimizers = [_inner(o) for o in trainer.optimizers]
            # the closure runs forward and backward inside optimizer.step(): the check is on_before_optimizer_step
            self.watch = Watch(None, optimizers, hooks="post", loader=False, **options).start()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if self.watch is not None:  # Lightning fetches the next batch ahead: this is the step's own
                self.watch.watch.on_item(batch, None)

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            if self.watch is not None and self.watch.before_step(_inner(optimizer)) is not None:
                trainer.should_stop = True

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if self.watch is not None and self.watch.failure is not None:
                trainer.should_stop = True

        def on_train_end(self, trainer, pl_module) -> None:
            if self.watch is not None:
                self.watch.stop()

        def on_exception(self, trainer, pl_module, exception) -> None:
            if self.watch is not None:
                self.watch.stop()

    return NanlintCallback()


def hf_callback(**options):
    """A ``transformers.TrainerCallback`` (``options`` as ``nanlint.watch``). After ``trainer.train()``:
    ``callback.watch.failure``, ``.health``, ``.write_html(path)``."""
    from transformers import TrainerCallback

    class NanlintTrainerCallback(TrainerCallback):
        def __init__(self) -> None:
            self.watch: Watch | None = None

        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            # the model's inputs are the batch (accelerate fetches the next batch ahead of the step)
            self.watch = Watch(model, _inner(optimizer), loader=False, **options).start()

        def on_step_end(self, args, state, control, **kwargs):
            if self.watch is not None and self.watch.failure is not None:
                control.should_training_stop = True
            return control

        def on_train_end(self, args, state, control, **kwargs):
            if self.watch is not None:
                self.watch.stop()

    return NanlintTrainerCallback()
