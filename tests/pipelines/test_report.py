"""The report's panels: what they draw from the catalog's stored statistics."""

import matplotlib.pyplot as plt

from pipelines.report import _histogram


def test_a_histogram_shows_the_empty_bins_the_catalog_does_not_store():
    """Empty bins vanished, so [0.6, 0.8) sat next to [1.2, 1.4) with no gap between them."""
    fig, ax = plt.subplots()
    _histogram(ax, {"[1.2, 1.4)": 2, "[0.6, 0.8)": 5, "(3, inf)": 1, "[2, 3)": 1}, "rt60")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["[0.6, 0.8)", "[0.8, 1)", "[1, 1.2)", "[1.2, 1.4)", "[1.4, 1.6)", "[1.6, 1.8)", "[1.8, 2)",
                      "[2, 3)", "(3, inf)"]  # gaps in steps of the bin before them
    assert [p.get_height() for p in ax.patches] == [5, 0, 0, 2, 0, 0, 0, 1, 1]
    assert "unequal width" in ax.get_title()  # [2, 3) is five times as wide as the rest
    plt.close(fig)
