"""SetFit fine-tuning for few-shot coding (Tunstall et al. 2022, the ``setfit`` package).

The sentence-embedding model is first fine-tuned contrastively on pairs of coded rows, then
the few-shot logistic regression is fitted on the tuned embeddings (``.fewshot``).
"""

from __future__ import annotations

from ...errors import TextlabError
from .fewshot import flat_codes



# Training pairs per second of SetFit on all-MiniLM-L6-v2 on a 2-core laptop-class CPU
# (benchmarks/coding_validity.py --setfit --device cpu: 4-6): for a rough warning only.
CPU_PAIRS_PER_SECOND = 5.0


def setfit_pairs(n_coded: int, folds: int = 5, iterations: int = 20, epochs: int = 1) -> int:
    """Training pairs SetFit draws for a run: each fold's model trains on (folds-1)/folds of
    the coded rows, the final model on all; each row gives two pairs per iteration."""
    rows = n_coded * (folds - 1) + n_coded
    return int(2 * iterations * epochs * rows)


def require_setfit():
    """The setfit package, or a TextlabError that says how to install it."""
    try:
        import setfit
    except ImportError as exc:
        raise TextlabError(
            "SetFit fine-tuning needs the optional package 'setfit', which is not installed. Install it with "
            "pip install \"textlab[setfit]\" (or pip install setfit), or use the logistic-regression classifier."
        ) from exc
    return setfit


def finetune_setfit(base_model, texts: list[str], codes: list, out_dir, *, labels: list[str] | None = None,
                    multi_label: bool = False, seed: int = 0, epochs: int = 1, iterations: int = 20,
                    batch_size: int = 16, device: str = "auto", on_step=None):
    """Fine-tune a sentence-transformers model on coded rows with SetFit; save it to ``out_dir``.

    ``base_model``: a local sentence-transformers folder. ``codes``: one code per text (a list
    of codes per text when ``multi_label``). ``iterations``: pairs drawn per coded row and
    epoch (SetFit's ``num_iterations``). ``on_step(step, total)`` is called after each
    optimiser step; an exception it raises (a cancelled job) stops the training. Only the
    embedding model is trained here: the classifier on top is :class:`FewShotModel`.
    Returns ``out_dir``, holding the tuned model in safetensors (no model card, no pickles).
    Nothing is fetched from the network: the model comes from disk and no Hub lookups run.
    """
    import tempfile
    from pathlib import Path

    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    from ...runner import release_model, resolve_device

    setfit = require_setfit()
    from setfit.model_card import ModelCardCallback

    torch_device = resolve_device(device)
    order = list(labels or sorted(set(flat_codes(codes))))
    if multi_label:
        targets = [[int(label in row) for label in order] for row in codes]
    else:
        targets = [order.index(c) for c in codes]
    body = SentenceTransformer(str(base_model), device=str(torch_device), local_files_only=True,
                               trust_remote_code=False, model_kwargs={"use_safetensors": True})
    # Built directly, not with SetFitModel.from_pretrained: that looks the model id up on the Hub.
    model = setfit.SetFitModel(model_body=body, multi_target_strategy="one-vs-rest" if multi_label else None,
                               labels=order)

    class Progress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if on_step is not None:
                on_step(int(state.global_step), int(state.max_steps))

    out = Path(out_dir)
    # The model leaves the accelerator however training ends (done, cancelled, failed):
    # the server outlives the job.
    try:
        with tempfile.TemporaryDirectory(prefix="textlab-setfit-") as scratch:
            args = setfit.TrainingArguments(
                output_dir=scratch, batch_size=int(batch_size), num_epochs=int(epochs),
                num_iterations=int(iterations), seed=int(seed), report_to="none", save_strategy="no",
                logging_strategy="no", show_progress_bar=False, use_amp=torch_device.type == "cuda",
            )
            trainer = setfit.Trainer(model=model, args=args)
            trainer.pop_callback(ModelCardCallback)  # it queries the Hub for model and dataset ids
            trainer.add_callback(Progress())
            try:
                trainer.train_embeddings(list(texts), targets, args=args)
            except torch.OutOfMemoryError as exc:
                raise TextlabError(
                    f"The GPU ran out of memory while fine-tuning SetFit with {batch_size} pairs per step. Run "
                    "again with a smaller setfit_batch_size (e.g. 8), close other jobs on the GPU, or use the "
                    "logistic-regression classifier."
                ) from exc
        out.mkdir(parents=True, exist_ok=True)
        body.save(str(out), safe_serialization=True, create_model_card=False)
    finally:
        release_model(body)
        del model, body
    return out
