"""Generated answers (``--llm``): the prompt, the model, the check of every sentence, and the chain joining them.

Nothing here is imported unless a model is asked for; the model integrations themselves (llama-index's) are imported
only by ``llm.load_model``.
"""
