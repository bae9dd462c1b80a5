"""The computation: ``stream`` (a generator of per-layer events for one loaded model and one prompt), one model's
per-block pass (``model_pass``), the forward trace (``trace``), the block Jacobians (``jacobians/``), exact coupling
as layers arrive (``coupling_stream``), context coupling (``context``), the collapse stage (``collapse``,
``collapse_pairs``), several prompts (``batch``) and two models (``compare``).

May import torch, ``core.load``, ``core.results`` (the events it yields, the names of its arrays), ``core.linalg``,
``core.maths``, ``core.options`` and core's top-level modules; never the command line or Textual."""
