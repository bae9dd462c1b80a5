"""Torch linear algebra, pure functions of tensors on any device: exact top-K singular triplets (``spectra``, with
the GPU's block subspace iteration in ``subspace``) and the coupling metric m_K with its depth / token / context
aggregations (``coupling``, the reference the engine's streamed coupling is tested against).

May import torch, numpy, scipy and ``core.maths``; never the engine, loading, results or the command line."""
