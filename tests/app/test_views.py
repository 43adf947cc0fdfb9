"""Readable component names in the score table (no page run needed)."""

from medsight.app_views import component_label, components_table


def test_every_shipped_component_gets_a_readable_distinct_name():
    comps = {"recon": 1.0, "knn_fused.relu4_3_full_centred": 0.2, "knn_fused.relu3_3_lungs_centred": 0.3,
             "patchcore.mean_patch_distance": 0.5, "max_patch_distance": 0.9}
    table = components_table(comps)
    assert list(table["key"]) == list(comps)
    assert all(table["component"] != table["key"])  # never the raw key twice
    assert component_label("knn_fused.relu3_3_lungs_centred") == "knn_fused: k-NN distance, relu3_3, lung field, centred"
    assert component_label("relu4_3_full") == "k-NN distance, relu4_3, whole image"
    assert component_label("unknown_signal") == "unknown_signal"
