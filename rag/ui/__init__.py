"""The chat UI: ``render`` (escaped HTML), ``handlers`` (what each request does), ``page`` (the gradio page), and
``static/`` (its stylesheet and script). ``app.py`` is the command-line shell that serves it."""
