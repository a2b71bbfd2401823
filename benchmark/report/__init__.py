"""``bench report`` and ``bench leaderboard``, pure functions of run records: tables, statistics,
performance profiles, batch-size fits, the headline, figures, the HTML page and the merged leaderboard. It
never imports the trial or the sweep."""
