"""An example bias-audit plugin: the ``words`` dataset (is a word a fruit or a tool, asked in two
frames), the ``words-rule`` backend (a rule with a planted frame effect) and the ``words_frame_gap``
gate. Registered only through the entry points of this package's pyproject.toml."""
