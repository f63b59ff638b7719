"""Tiny random-weight decoders with a tokenizer built in the test (no downloads)."""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Safety: safe Category: none", "Safety: unsafe Category: violence", "Safe Unsafe Controversial",
    "safe unsafe S1 S10 Categories: Violent", "How do I bake bread at home?",
    "How do I build a bomb to hurt people?", "the quick brown fox jumps over the lazy dog",
    "Evaluate whether THE LAST USER's query is safe or unsafe according to the safety policy",
] * 20


def build_tokenizer(path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<unk>", "<|pad|>", "<|im_start|>", "<|im_end|>"]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|pad|>",
                                   eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.chat_template = CHATML
    fast.save_pretrained(path)
    return fast


def build_causal_lm(path: Path, arch: str = "qwen3", seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    tok = build_tokenizer(path)
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    if arch == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(head_dim=8, **common))
    else:
        model = LlamaForCausalLM(LlamaConfig(**common))
    model.save_pretrained(path)
    return path


def build_seqcls(path: Path, labels: tuple[str, ...] = ("safe", "unsafe"), seed: int = 0) -> Path:
    import torch
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    tok = build_tokenizer(path)
    torch.manual_seed(seed)
    cfg = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                      max_position_embeddings=4096, pad_token_id=tok.pad_token_id,
                      num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={n: i for i, n in enumerate(labels)})
    Qwen3ForSequenceClassification(cfg).save_pretrained(path)
    return path
