"""CrossEncoderReranker on a tiny cross-encoder built in code (real sentence-transformers code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.reranker import CrossEncoderReranker

pytestmark = pytest.mark.model


def build_tiny_cross_encoder(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from tests.tiny import WORDS

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"0123456789[],.?!:"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, num_labels=1)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_scores_every_pair_deterministically(tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(model=str(build_tiny_cross_encoder(tmp_path)))
    texts = ["debian is linux", "the answer is in the document", "ragqa is a server"]
    scores = reranker.rerank("what is ragqa ?", texts)
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert reranker.rerank("what is ragqa ?", texts) == pytest.approx(scores)
    assert len(set(scores)) == 3  # a real model, not a constant
    assert reranker.rerank("q", []) == []
