from medsight.nlp.evaluate import _segments, render_model_card


def test_training_minutes_add_up_across_resumed_runs():
    history = [{"minutes": 1.0}, {"minutes": 2.5}, {"minutes": 1.2}, {"minutes": 2.0}]
    assert _segments(history) == [2.5, 2.0]


def test_card_is_rendered_from_metrics_not_typed():
    ner = {"precision": 0.86, "recall": 0.8, "f1": 0.83, "support": 10, "dataset": "BC5CDR test split",
           "per_type": {"Chemical": {"precision": 0.9, "recall": 0.85, "f1": 0.87, "support": 6},
                        "Disease": {"precision": 0.8, "recall": 0.75, "f1": 0.77, "support": 4}}}
    card = render_model_card(ner, None, None, {"config": {"embed_rows": [1, 2, 3, 4], "width": 8}, "history": [{"minutes": 3.0}]})
    assert "| Chemical | 0.900 | 0.850 | 0.870 | 6 |" in card
    assert "**0.830**" in card
    assert "## Limits" in card
