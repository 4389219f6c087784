"""Question answering over news articles with exact-passage citations."""

from rag import offline

offline.apply()
