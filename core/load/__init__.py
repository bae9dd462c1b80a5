"""Getting a model into memory: resolve ``--model`` (hub id, local directory, .gguf, the offline default) and load
it with its tokenizer (``models``, ``default_model``), the per-family adapters that say where the blocks, the final
norm and the unembedding live (``adapters``), and where each block was placed (``placement``).

May import torch, transformers, accelerate, ``core.options`` and core's top-level modules; never the engine,
results, the command line or Textual."""
