"""The model registry: priority order, budget accounting, LRU eviction, pinning, CPU fallback, concurrent use,
measured CPU memory, retries of failed loads, shared models loaded once.

Accounting is tested on CPU against a fake allocator (a small budget, models that "allocate" on the fake GPU);
the last test checks it against real CUDA allocations and runs only where a GPU is present."""

from __future__ import annotations

import random
import threading
import time

import pytest

from medsight.registry import (
    ESTIMATE,
    EVICTED,
    LOADED,
    PENDING,
    RSS_MEASURED,
    TENSORS,
    UNAVAILABLE,
    ModelRegistry,
    ModelUnavailable,
)


class FakeGPU:
    def __init__(self):
        self.allocated = 0.0
        self.lock = threading.Lock()

    def memory_mb(self) -> float:
        return self.allocated

    def add(self, mb: float) -> None:
        with self.lock:
            self.allocated += mb


class FakeModel:
    """Holds `mb` of fake GPU memory while its device is cuda; `.to()` moves it like a torch module does."""

    def __init__(self, gpu: FakeGPU, mb: float, device: str):
        self.gpu, self.mb, self.device = gpu, mb, "cpu"
        self.to(device)

    def to(self, device: str) -> "FakeModel":
        if device.startswith("cuda") and not self.device.startswith("cuda"):
            self.gpu.add(self.mb)
        elif not device.startswith("cuda") and self.device.startswith("cuda"):
            self.gpu.add(-self.mb)
        self.device = device
        return self


def make(budget_mb=100.0, device="cuda", models=(("a", 40, 0), ("b", 40, 1), ("c", 40, 2)), calls=None, estimate=0.5):
    gpu = FakeGPU()
    reg = ModelRegistry(budget_mb=budget_mb, device=device, cuda_memory=gpu.memory_mb)
    for key, mb, prio in models:
        def loader(dev, key=key, mb=mb):
            if calls is not None:
                calls.append(key)
            return FakeModel(gpu, mb, dev)
        # by default the estimate is off: on "CUDA" the registry must correct it with the measured size
        reg.register(key, loader, priority=prio, memory_mb=mb * estimate, gpu=True)
    return reg, gpu


def test_background_loads_in_priority_order():
    calls = []
    reg, _ = make(budget_mb=1000, models=(("late", 10, 9), ("first", 10, 0), ("middle", 10, 5)), calls=calls)
    reg.start_background().join(10)
    assert calls == ["first", "middle", "late"]
    assert [m["model"] for m in reg.status()["models"]] == ["first", "middle", "late"]
    assert all(m["state"] == LOADED for m in reg.status()["models"])


def test_first_model_usable_while_slow_model_loads():
    gate = threading.Event()
    reg = ModelRegistry(budget_mb=100, device="cpu")
    reg.register("fast", lambda dev: "fast-model", priority=0)
    reg.register("slow", lambda dev: gate.wait(10) and "slow-model", priority=1)
    reg.start_background()
    assert reg.wait("fast", 5)
    t0 = time.perf_counter()
    assert reg.get("fast") == "fast-model"
    status = reg.status()  # must not wait for the slow load
    assert time.perf_counter() - t0 < 1.0
    assert {m["model"]: m["state"] for m in status["models"]}["slow"] == "loading"
    assert status["loading"]
    gate.set()
    assert reg.wait("slow", 5) and reg.get("slow") == "slow-model"


def test_measured_memory_and_budget_with_lru_eviction():
    reg, gpu = make(budget_mb=100)
    reg.get("a")
    reg.get("b")
    assert reg.gpu_used_mb() == pytest.approx(80) == gpu.allocated  # measured, not the 20 MB estimates
    reg.get("a")  # a is now the most recently used
    reg.get("c")  # needs 40 more: b (least recently used) goes to CPU
    assert reg.state("b") == EVICTED and reg.state("a") == LOADED and reg.state("c") == LOADED
    assert gpu.allocated == pytest.approx(80)
    assert reg.status()["evictions"][-1]["model"] == "b"
    assert reg.status()["evictions"][-1]["action"] == "moved to CPU"
    # using b again brings it back and pushes out the least recently used of a, c (a)
    model_b = reg.get("b")
    assert model_b.device == "cuda" and reg.state("a") == EVICTED
    assert gpu.allocated <= 100


def test_pinned_models_are_not_evicted_and_newcomer_falls_back_to_cpu():
    reg, gpu = make(budget_mb=100, models=(("a", 60, 0), ("b", 60, 1)))
    with reg.use("a") as a:
        b = reg.get("b")
        assert a.device == "cuda" and b.device == "cpu"
        assert "GPU budget" in {m["model"]: m for m in reg.status()["models"]}["b"]["note"]
    assert gpu.allocated == 60


def test_model_larger_than_budget_stays_on_cpu_without_evicting_others():
    reg, gpu = make(budget_mb=100, models=(("a", 40, 0), ("huge", 500, 1)))
    reg.get("a")
    reg.register("huge2", lambda dev: FakeModel(gpu, 500, dev), memory_mb=500, gpu=True)
    assert reg.get("huge2").device == "cpu"
    assert reg.state("a") == LOADED and reg.get("a").device == "cuda"


def test_cpu_fallback_without_cuda():
    reg, gpu = make(device="cpu")
    for key in ("a", "b", "c"):
        assert reg.get(key).device == "cpu"
    assert gpu.allocated == 0 and reg.gpu_used_mb() == 0
    rows = reg.status()["models"]
    assert all(m["memory_from"] == RSS_MEASURED for m in rows)  # on CPU: measured, not the estimates repeated
    assert reg.status()["cpu_resident_mb"] == pytest.approx(sum(m["memory_mb"] for m in rows), abs=0.2)


def test_cpu_memory_is_the_measured_growth_of_resident_memory():
    """Resident memory is process-wide: other tests' threads (app servers, background loaders) free and allocate
    while this one loads, so the measurement runs in a fresh interpreter of its own."""
    import json
    import subprocess
    import sys

    pytest.importorskip("numpy")
    code = (
        "import json, numpy as np\n"
        "from medsight.registry import ModelRegistry\n"
        "reg = ModelRegistry(budget_mb=100, device='cpu')\n"
        "reg.register('big', lambda dev: np.ones(80 * 2**20 // 8), memory_mb=5.0)  # 80 MB, every page touched\n"
        "reg.get('big')\n"
        "status = reg.status()\n"
        "print(json.dumps({'row': status['models'][0], 'rss': status['process_rss_mb']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    row = result["row"]
    assert row["memory_from"] == RSS_MEASURED and row["estimate_mb"] == 5.0
    assert row["memory_mb"] == pytest.approx(80, abs=12)
    assert result["rss"] > 80


def test_memory_mapped_weights_count_by_their_size(tmp_path):
    """Weights mapped from a file are resident only once read: the RSS growth at load misses them, their size not."""
    np = pytest.importorskip("numpy")
    path = tmp_path / "weights.bin"
    np.ones(64 * 2**20 // 4, dtype=np.float32).tofile(path)
    reg = ModelRegistry(budget_mb=100, device="cpu")
    reg.register("mapped", lambda dev: {"weights": np.memmap(path, dtype=np.float32, mode="r")}, memory_mb=1.0)
    reg.get("mapped")
    row = reg.status()["models"][0]
    assert row["memory_from"] == TENSORS and row["memory_mb"] == pytest.approx(64, abs=0.5) == row["tensors_mb"]


def test_memory_is_labelled_an_estimate_where_nothing_can_be_measured():
    reg = ModelRegistry(budget_mb=100, device="cpu", process_memory=lambda: None)
    reg.register("a", lambda dev: 1, memory_mb=30.0)
    already = ModelRegistry(budget_mb=100, device="cpu")
    already.register("b", lambda dev: 2, memory_mb=40.0, resident=lambda: True)  # its module held it already
    reg.get("a"), already.get("b")
    a, b = reg.status()["models"][0], already.status()["models"][0]
    assert (a["memory_mb"], a["memory_from"]) == (30.0, ESTIMATE)
    assert b["memory_mb"] == 40.0 and b["memory_from"].startswith(ESTIMATE) and "before the registry" in b["memory_from"]


def test_unavailable_model_has_a_reason_and_does_not_stop_the_others():
    reg = ModelRegistry(budget_mb=100, device="cpu")

    def missing(dev):
        raise FileNotFoundError("no trained detector 'paper' in /x")

    reg.register("broken", missing, priority=0)
    reg.register("fine", lambda dev: 1, priority=1)
    reg.start_background().join(5)
    assert reg.state("broken") == UNAVAILABLE and reg.state("fine") == LOADED
    with pytest.raises(ModelUnavailable, match="no trained detector"):
        reg.get("broken")
    assert {m["model"]: m["note"] for m in reg.status()["models"]}["broken"].startswith("no trained detector")


def test_unload_frees_and_reloads_on_next_use():
    calls = []
    reg, gpu = make(calls=calls)
    reg.get("a")
    reg.evict("a", unload=True)
    assert reg.state("a") == EVICTED and reg.gpu_used_mb() == 0
    assert reg.status()["evictions"][-1]["action"] == "unloaded"
    assert reg.get("a").device == "cuda" and calls.count("a") == 2


def test_concurrent_sessions_load_once_and_respect_the_budget():
    calls = []
    reg, gpu = make(budget_mb=100, calls=calls, estimate=1.0)
    reg.start_background()
    over_budget, errors = [], []

    def session(seed):
        rng = random.Random(seed)
        try:
            for _ in range(40):
                with reg.use(rng.choice("abc")) as model:
                    if gpu.allocated > 100 + 1e-9:
                        over_budget.append(gpu.allocated)
                    assert model.device in ("cuda", "cpu")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and not over_budget
    assert sorted(calls) == ["a", "b", "c"]  # each loader ran exactly once
    assert all(m["in_use"] == 0 for m in reg.status()["models"])
    assert reg.gpu_used_mb() == pytest.approx(gpu.allocated)


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("MEDSIGHT_GPU_BUDGET_MB", "1234")
    assert ModelRegistry(device="cpu").budget_mb == 1234
    monkeypatch.delenv("MEDSIGHT_GPU_BUDGET_MB")
    assert ModelRegistry(device="cpu").budget_mb == 3500


def test_priorities_and_estimates_come_from_the_spec_table():
    from medsight.specs import MODEL_SPECS

    reg = ModelRegistry(device="cpu")
    reg.register("vgg16", lambda dev: 0, gpu=True)
    row = reg.status()["models"][0]
    assert row["priority"] == MODEL_SPECS["vgg16"].priority and row["estimate_mb"] == MODEL_SPECS["vgg16"].memory_mb


def test_real_cuda_allocations_are_accounted():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    mb = 64
    reg = ModelRegistry(budget_mb=150, device="cuda")
    for key in ("a", "b", "c"):
        # 64 MB of fp32 parameters each
        reg.register(key, lambda dev: torch.nn.Linear(4096, mb * 2**20 // 4 // 4096, bias=False).to(dev), gpu=True, memory_mb=10)
    base = torch.cuda.memory_allocated() / 2**20
    reg.get("a"), reg.get("b")
    assert reg.gpu_used_mb() == pytest.approx(2 * mb, rel=0.05)
    reg.get("c")  # 3 x 64 > 150: the least recently used (a) moves to CPU
    assert reg.state("a") == EVICTED and next(reg.get("c").parameters()).is_cuda
    assert torch.cuda.memory_allocated() / 2**20 - base == pytest.approx(reg.gpu_used_mb(), rel=0.05)
    assert reg.gpu_used_mb() <= 150


def flaky(fail_times: int, calls: list):
    def load(dev):
        calls.append(dev)
        if len(calls) <= fail_times:
            raise OSError("weights folder not mounted yet")
        return "model"
    return load


def test_failed_load_is_retried_after_the_cooldown():
    calls = []
    reg = ModelRegistry(budget_mb=100, device="cpu", retry_after_s=0.3)
    reg.register("x", flaky(1, calls))
    with pytest.raises(ModelUnavailable, match="not mounted"):
        reg.get("x")
    with pytest.raises(ModelUnavailable):  # within the cooldown: no new attempt
        reg.get("x")
    row = reg.status()["models"][0]
    assert len(calls) == 1 and row["state"] == UNAVAILABLE and row["retry_in_s"] is not None
    time.sleep(0.35)
    assert reg.get("x") == "model" and len(calls) == 2
    assert reg.status()["models"][0]["note"] == "" and reg.status()["models"][0]["retry_in_s"] is None


def test_explicit_retry_without_waiting():
    calls = []
    reg = ModelRegistry(budget_mb=100, device="cpu", retry_after_s=float("inf"))
    reg.register("x", flaky(1, calls))
    reg.register("y", lambda dev: "fine")
    reg.start_background().join(5)
    assert reg.state("x") == UNAVAILABLE and reg.status()["models"][0]["retry_in_s"] is None  # never by itself
    assert reg.retry("y") == []  # only unavailable models are reset
    assert reg.retry() == ["x"] and reg.state("x") == PENDING
    reg.start_background().join(5)
    assert reg.state("x") == LOADED and reg.get("x") == "model" and len(calls) == 2


def test_retry_interval_from_environment(monkeypatch):
    monkeypatch.setenv("MEDSIGHT_RETRY_S", "7")
    assert ModelRegistry(device="cpu").retry_after_s == 7


def test_shared_model_is_loaded_once_before_the_models_that_require_it():
    calls = []
    reg = ModelRegistry(budget_mb=100, device="cpu")
    encoder = object()
    reg.register("encoder", lambda dev: calls.append("encoder") or encoder, priority=5, held_by_module=True)
    # loaders may ask the registry for what they require: it is loaded by then
    reg.register("notes", lambda dev: calls.append("notes") or ("notes", reg.get("encoder")), priority=1,
                 requires=("encoder",), held_by_module=True)
    reg.register("kb", lambda dev: calls.append("kb") or ("kb", reg.get("encoder")), priority=2, requires=("encoder",))
    reg.start_background().join(5)
    assert calls == ["encoder", "notes", "kb"]
    assert reg.get("notes")[1] is reg.get("kb")[1] is encoder
    with pytest.raises(ValueError, match="not registered"):
        reg.register("orphan", lambda dev: 0, requires=("missing",))


def test_model_whose_requirement_fails_says_so():
    def missing_package(dev):
        raise ImportError("sentence-transformers is not installed")

    reg = ModelRegistry(budget_mb=100, device="cpu", retry_after_s=float("inf"))
    reg.register("encoder", missing_package)
    reg.register("notes", lambda dev: "notes", requires=("encoder",))
    with pytest.raises(ModelUnavailable, match="needs encoder.*sentence-transformers"):
        reg.get("notes")
    assert reg.state("notes") == UNAVAILABLE


def test_singleton_held_by_its_module_is_never_unloaded():
    reg = ModelRegistry(budget_mb=100, device="cpu")
    reg.register("held", lambda dev: "singleton", held_by_module=True)
    reg.register("owned", lambda dev: "own")
    reg.get("held"), reg.get("owned")
    reg.evict("held", unload=True)
    reg.evict("owned", unload=True)
    assert reg.state("held") == LOADED and reg.state("owned") == EVICTED


@pytest.mark.slow
def test_app_registry_hands_out_the_library_singletons():
    """The app's MiniLM entry is the encoder the note classifier and the knowledge base use (one object, counted
    once), and the note analyser entry is the library's own pipeline."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("spacy")
    from medsight import embeddings
    from medsight.nlp import load_pipeline
    from medsight.nlp.zeroshot import load_embedder
    from medsight.registry import build_app_registry

    reg = build_app_registry(device="cpu")
    try:
        nlp = reg.get("nlp")
    except ModelUnavailable as exc:
        pytest.skip(f"note analyser not installed here: {exc}")
    encoder = reg.get("minilm")
    assert encoder is embeddings.sentence_encoder() is load_embedder()
    assert nlp is load_pipeline()
    rows = {m["model"]: m for m in reg.status()["models"]}
    assert rows["minilm"]["state"] == LOADED and rows["nlp"]["state"] == LOADED
    # MiniLM is counted under its own entry only, not again in the note analyser's estimate
    from medsight.specs import MODEL_SPECS

    from medsight.nlp.lm_ner import lm_ner_available

    held = MODEL_SPECS["ner_bc5cdr"].memory_mb  # the default NER holds SmolLM2 when it is the LM-feature one
    held += MODEL_SPECS["smollm2_135m_instruct"].memory_mb if lm_ner_available() else 0.0
    assert rows["nlp"]["estimate_mb"] == held
    reg.evict("minilm", unload=True)
    assert reg.state("minilm") == LOADED  # its module keeps it: "unload" would free nothing
