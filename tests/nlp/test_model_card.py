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


def test_cnn_epoch_count_is_chosen_on_the_development_curve():
    import pytest

    from medsight.nlp.ner import epochs_chosen_on_dev

    history = [{"epoch": 1, "dev_f1": 0.60}, {"epoch": 2, "dev_f1": 0.79}, {"epoch": 3, "dev_f1": 0.78},
               {"epoch": 4, "dev_f1": 0.79}]
    assert epochs_chosen_on_dev(history) == {"selected_on": "dev", "epochs": 2, "dev_f1": 0.79,
                                             "dev_curve": [0.60, 0.79, 0.78, 0.79]}  # the earlier of a tie
    with pytest.raises(ValueError, match="--dev"):
        epochs_chosen_on_dev([{"epoch": 1, "loss": 3.0}])


def test_card_of_a_dev_selected_cnn_says_so():
    meta = {"config": {"embed_rows": [1, 2, 3, 4], "width": 8}, "history": [{"minutes": 3.0}],
            "selection": {"selected_on": "dev", "epochs": 9, "dev_f1": 0.801, "dev_curve": [0.7, 0.801, 0.8]}}
    card = render_model_card(None, None, None, meta)
    assert "selected_on = dev" in card and "for 9 epochs" in card and "0.700, 0.801, 0.800" in card
    assert "in view" not in card and "--epochs-from" in card


def test_epochs_from_a_run_without_development_scores_is_refused(tmp_path, capsys):
    import json

    from medsight.cli import main

    run = tmp_path / "run"
    run.mkdir()
    assert main(["nlp", "train-ner", "--kind", "cnn", "--epochs-from", str(tmp_path / "missing")]) != 0
    assert "train-ner --kind cnn --dev" in capsys.readouterr().err
    (run / "meta.json").write_text(json.dumps({"medsight_train": {"history": [{"epoch": 1, "loss": 2.0}]}}))
    assert main(["nlp", "train-ner", "--kind", "cnn", "--epochs-from", str(run)]) != 0
    assert "no Development scores" in capsys.readouterr().err
    assert main(["nlp", "train-ner", "--kind", "cnn", "--epochs-from", str(run), "--epochs", "3"]) != 0
    assert "leave out --dev, --epochs" in capsys.readouterr().err
