"""Benchmarks of the library (``make bench``, ``make bench-scale``), kept outside it: speed and memory against floors
measured in the same run, the article library on a large index, and scaling with the corpus."""
