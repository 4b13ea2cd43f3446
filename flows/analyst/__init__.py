"""The analysts' tools: snapshot a database into a DuckDB replay file, diff two runs, the HTML
report and its charts, import external interactions, evaluate the model, read lists back."""
