"""The zero-shot classifier's sentence-embedding cache: same vectors as without it, bounded, read-only, and safe when
many sessions embed at once (Streamlit shares the module between threads)."""

import threading

import numpy as np
import pytest

from medsight.nlp.zeroshot import _EmbeddingCache


def fake_encode(calls):
    def encode(texts):
        calls.append(list(texts))
        return np.stack([np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8).astype("float32") for t in texts])
    return encode


def test_cached_vectors_equal_fresh_ones_and_repeats_are_not_encoded_again():
    calls = []
    cache = _EmbeddingCache(16)
    first = cache.embed(["No pneumothorax.", "Heart size is normal.", "No pneumothorax."], fake_encode(calls))
    again = cache.embed(["Heart size is normal.", "Small left effusion."], fake_encode(calls))
    assert calls == [["No pneumothorax.", "Heart size is normal."], ["Small left effusion."]]
    assert np.array_equal(first[0], first[2]) and np.array_equal(first[1], again[0])
    assert np.array_equal(again, fake_encode([])(["Heart size is normal.", "Small left effusion."]))
    assert cache.hits == 2 and cache.misses == 3
    with pytest.raises(ValueError):
        cache._vectors["No pneumothorax."][0] = 1.0  # nobody can change a shared vector in place


def test_the_cache_is_bounded_and_can_be_turned_off():
    calls = []
    cache = _EmbeddingCache(2)
    for text in ["a b", "c d", "e f", "a b"]:
        cache.embed([text], fake_encode(calls))
    assert len(cache._vectors) == 2 and calls[-1] == ["a b"]  # the oldest was evicted, so embedded again
    off = _EmbeddingCache(0)
    off.embed(["a b"], fake_encode(calls))
    off.embed(["a b"], fake_encode(calls))
    assert calls[-2:] == [["a b"], ["a b"]] and not off._vectors


def test_many_threads_at_once_get_the_right_vectors():
    cache = _EmbeddingCache(64)
    texts = [f"finding {i} in the right lower lobe" for i in range(40)]
    expected = {t: fake_encode([])([t])[0] for t in texts}
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(30):
            batch = list(rng.choice(texts, size=5))
            out = cache.embed(batch, fake_encode([]))
            if not all(np.array_equal(v, expected[t]) for t, v in zip(batch, out)):
                errors.append(seed)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(cache._vectors) == 40


def test_embed_sentences_through_the_cache_equals_the_encoder():
    from medsight.nlp.zeroshot import embed_sentences, load_embedder

    texts = ["No focal consolidation.", "Mild cardiomegaly.", "No focal consolidation."]
    direct = load_embedder().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.allclose(embed_sentences(texts), direct, atol=1e-5)
    assert np.allclose(embed_sentences(texts), direct, atol=1e-5)  # the second time from the cache
