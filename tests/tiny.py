"""Tiny real models built in code: a 2-layer Llama chat model and a 2-layer BERT embedder."""

from __future__ import annotations

from pathlib import Path

_WORD_LIST = (
    "the a an is are was of to in and or for on with what how why who which ragqa debian "
    "linux answer question document documents source sources chunk chunks index model "
    "server collection ingest ask page pages text file files install run test cite not find "
    "could i you it this that be can do does"
)
WORDS = _WORD_LIST.split()
SPECIALS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]", "[MASK]"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
    "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def _byte_bpe_tokenizer(specials: list[str]) -> object:
    """A byte-level BPE tokenizer (the kind real chat models use), trained in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    sentences = [" ".join(WORDS[i : i + 7]) + " ." for i in range(len(WORDS))]
    tokenizer.train_from_iterator(sentences * 3, trainer=trainer)
    return tokenizer


def build_tiny_llama(folder: Path, *, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama with a byte-level BPE tokenizer (trained in memory
    on WORDS) and a chat template."""
    import torch
    from transformers import (
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(seed)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_byte_bpe_tokenizer(SPECIALS),
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
        initializer_range=1.0,  # large random weights: varied words, not one repeated token
    )
    model = LlamaForCausalLM(config)
    # Keep the random model to printable text: no special tokens, no partial UTF-8 bytes.
    unprintable = [
        i
        for i in range(len(tokenizer))
        if not (text := tokenizer.decode([i])).isascii()
        or not text.isprintable()
        or i < len(SPECIALS)
    ]
    model.generation_config = GenerationConfig(
        suppress_tokens=unprintable,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_sentence_transformer(folder: Path, *, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT with mean pooling, saved as a sentence-transformer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    bert = folder / "bert"
    bert.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"0123456789[],.?!:"]
    (bert / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(bert / "vocab.txt")).save_pretrained(bert)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(bert)
    transformer = Transformer(str(bert), max_seq_length=64)
    model = SentenceTransformer(
        modules=[transformer, Pooling(32, pooling_mode="mean")], device="cpu"
    )
    model.save(str(folder / "st"))
    return folder / "st"
